"""Claim-once keys for replay protection (the seed's ``IdempotencyService``).

A key moves ``new`` → ``processing`` → ``done``:

- ``try_acquire_lock(key)`` claims it atomically (a Lua script: GET, and SET … EX only when it
  was absent); exactly one concurrent caller gets ``acquired=True`` and ``state="new"``; the
  others see ``processing`` or ``done``.
- ``complete(key)`` marks it ``done`` for the claim's TTL (24 h by default): replays are refused.
- ``release(key)`` frees a claim whose processing failed, so the sender's retry is processed.
- A ``processing`` claim expires after ``IDEMPOTENCY_PROCESSING_TTL`` (≤ 1 h by default): a
  processor that died does not block the key until the 24 h TTL runs out.

The claim value carries a random token (``ClaimResult.token``). ``complete``/``release`` act
only on their own claim, so a slow processor whose claim expired and was taken over cannot free
or finish the newcomer's claim. ``claim()`` and ``@idempotent`` pass the token; a bare
``complete(key)`` / ``release(key)`` uses the token of this thread's own claim on ``key`` (the
seed's call pattern), and acts on any claim only when this thread never claimed ``key``.
A processor that completes after its claim expired, when nobody took the key over, still marks
it done: the work was done, so a replay must not run it again.

A claim made inside an RQ job run by ``broxiva.worker`` records its holder: the queue, job id and
execution id. A worker killed mid-job (SIGKILL, OOM, machine lost) leaves its claim
``processing``; crash recovery retries the job about a minute later. That retry (or any other
caller) takes the claim over as soon as the holder is provably dead: its execution is no longer
listed in its queue's ``StartedJobRegistry`` (RQ's registry maintenance removes an execution
whose worker stopped renewing its lease, before the job is retried). A holder that is still
listed is alive, so two live duplicates never both run; the take-over is a compare-and-set, so
of several callers meeting one dead claim exactly one gets it. A claim without a holder (made
outside a job, e.g. by a webhook view, or by a plain RQ worker) is never taken over; it expires
after ``IDEMPOTENCY_PROCESSING_TTL``. (Threads a job starts claim as the job's execution.)

``@idempotent`` never turns a claim that is still ``processing`` into a silent success: it raises
``ClaimHeld`` (a ``DeferJob``), so the worker runs the job again after ``ClaimHeld.seconds``
without spending an attempt; by then the key is done (the duplicate returns None), free, or
held by a dead holder (taken over). Called outside a job, the caller gets ``ClaimHeld``. A
webhook view calling ``try_acquire_lock`` itself should answer a ``processing`` result so that
the sender retries (e.g. 409 or 503 with ``Retry-After: result.retry_after``), and only a
``done`` one as an accepted duplicate.

Keys are colon-namespaced (``webhook:shopify:<event id>``), stored as
``idempotency:[tenant:]webhook:shopify:<event id>``; each segment is checked by ``broxiva.keys``.
"""

from __future__ import annotations

import functools
import logging
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from django.conf import settings
from redis.commands.core import Script

from broxiva.connections import client_for, get_redis
from broxiva.keys import Name, build_key, split_name, ttl
from broxiva.ratelimit import DeferJob

logger = logging.getLogger(__name__)

State = Literal["new", "processing", "done"]
DONE = "done"
PROCESSING = "processing"

# A claim's value: "processing:<done TTL>:<token>", then ":<job id>:<execution id>:<RQ queue>"
# when a job made it (RQ job ids have no ':'; a queue name may). Tokens are hex.

# KEYS[1] key; ARGV[1] claim value; ARGV[2] processing expiry (s). Return {current value, its
# PTTL}, or nil after claiming. One script so no other caller can slip in between the read and the write.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current then return {current, redis.call('PTTL', KEYS[1])} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""

# KEYS[1] key; ARGV[1] the dead holder's claim value; ARGV[2] new claim value; ARGV[3] expiry (s).
# Replace the claim only if it is still the one found dead: of several callers, one wins.
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

# KEYS[1] key; ARGV[1] token ('' = any claim); ARGV[2] done TTL (s), '0' = the claim's own TTL;
# ARGV[3] TTL when the claim is gone and none was given. Return 1 when the key is (now) done.
# A token completes its own claim or a key nobody holds any more (its claim expired and was not
# taken over), never another caller's claim.
_COMPLETE = """
local current = redis.call('GET', KEYS[1])
if current == 'done' then return 1 end
local claim_ttl, token
if current then claim_ttl, token = string.match(current, '^processing:(%d+):(%x+)') end
if ARGV[1] ~= '' and current and token ~= ARGV[1] then return 0 end
local ttl = tonumber(ARGV[2])
if ttl <= 0 then ttl = tonumber(claim_ttl) or tonumber(ARGV[3]) end
redis.call('SET', KEYS[1], 'done', 'EX', ttl)
return 1
"""

# KEYS[1] key; ARGV[1] token ('' = any claim). Delete a processing claim; never a done key.
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local token = string.match(current, '^processing:%d+:(%x+)')
if not token then return 0 end
if ARGV[1] ~= '' and token ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


@dataclass(frozen=True)
class ClaimResult:
    """``acquired`` is True for the one caller that claimed the key (``state == "new"``).

    ``retry_after`` (for ``processing``): seconds after which asking again may find the key done,
    free or taken over. ``taken_over``: acquired from a holder that was provably dead.
    """

    acquired: bool
    state: State
    key: str
    token: str | None = None
    retry_after: float | None = None
    taken_over: bool = False


class ClaimHeld(DeferJob):
    """Raised by ``@idempotent`` when its key is still ``processing`` under a live (or unknown) holder.

    A ``DeferJob``: the worker runs the job again after ``seconds`` without spending an attempt.
    """


@dataclass(frozen=True)
class Holder:
    """The RQ job execution that made a claim: it is alive while its queue's started registry lists it."""

    queue: str
    job_id: str
    execution_id: str

    def encode(self) -> str:
        return f"{self.job_id}:{self.execution_id}:{self.queue}"

    @classmethod
    def of_claim(cls, value: bytes) -> Holder | None:
        """Return the holder recorded in a ``processing`` claim's value, or None if it has none."""
        parts = value.decode(errors="replace").split(":", 5)
        if len(parts) != 6 or not all(parts[3:]):
            return None
        return cls(queue=parts[5], job_id=parts[3], execution_id=parts[4])

    def alive(self) -> bool:
        """Return False once the execution is no longer listed in its queue's ``StartedJobRegistry``.

        RQ lists an execution there from before the job function runs until it ended; registry
        maintenance removes one whose worker stopped renewing its lease (and only then retries
        the job). Not listed means ended or dead, so a claim it still holds was abandoned.
        """
        from rq.registry import StartedJobRegistry

        registry = StartedJobRegistry.key_template.format(self.queue)
        member = f"{self.job_id}:{self.execution_id}"  # RQ's Execution.composite_key
        return client_for(settings.REDIS_QUEUE_URL).zscore(registry, member) is not None


# The job execution this process is running (set by broxiva.worker around each job). A module
# global, not a thread-local: an RQ worker process (or its work horse) runs one job at a time,
# and threads the job starts are part of that execution; web processes never set it.
_running: Holder | None = None


@contextmanager
def held_by_job(queue: str, job_id: str, execution_id: str) -> Iterator[None]:
    """While the block runs, claims made in this process record this job execution as their holder."""
    global _running
    previous, _running = _running, Holder(queue=queue, job_id=job_id, execution_id=execution_id)
    try:
        yield
    finally:
        _running = previous


def _retry_after(pttl_ms: int | None) -> float:
    # One job lease: a holder that died by now is no longer listed once maintenance has run. Never
    # later than the claim's own expiry. JOB_MAX_DEFERRALS leases outlast IDEMPOTENCY_PROCESSING_TTL
    # with the defaults (100 x 40 s > 1 h), so a job waiting behind a holder-less claim still runs.
    from broxiva.recovery import heartbeat_ttl

    wait = float(heartbeat_ttl(settings.WORKER_JOB_MONITORING_INTERVAL))
    if pttl_ms is not None and pttl_ms > 0:
        wait = min(wait, pttl_ms / 1000)
    return float(max(1, math.ceil(wait)))


class _OwnClaims(threading.local):
    """This thread's recent claims (Redis key → token), so a bare ``complete(key)`` / ``release(key)``
    acts only on the caller's own claim. Bounded: only the time between a claim and its end matters."""

    limit = 1024

    def __init__(self) -> None:
        self.tokens: OrderedDict[str, str] = OrderedDict()

    def remember(self, redis_key: str, token: str) -> None:
        self.tokens[redis_key] = token
        self.tokens.move_to_end(redis_key)
        while len(self.tokens) > self.limit:
            self.tokens.popitem(last=False)

    def token(self, redis_key: str, given: str | None) -> str:
        return given or self.tokens.get(redis_key) or ""

    def forget(self, redis_key: str, token: str) -> None:
        if token and self.tokens.get(redis_key) == token:
            del self.tokens[redis_key]


_own_claims = _OwnClaims()


@functools.cache
def _script(source: str) -> Script:
    # Bound to the first client only for its encoder; every call passes the process's client.
    return get_redis().register_script(source)


def idempotency_key(key: Name, *, tenant: Any = None) -> str:
    """Return the Redis key of ``key``; ValueError for an empty, spaced or injected segment."""
    return build_key("idempotency", *split_name(key), tenant=tenant)


def try_acquire_lock(key: Name, *, ttl_seconds: int = 86400, tenant: Any = None) -> ClaimResult:
    """Claim ``key``: the first caller gets ``acquired=True``; others see the current state.

    ``ttl_seconds`` is how long a completed key is remembered; while processing, the claim
    expires after ``min(IDEMPOTENCY_PROCESSING_TTL, ttl_seconds)``.
    """
    if not isinstance(ttl_seconds, int) or ttl_seconds < 1:
        raise ValueError("ttl_seconds must be a positive whole number of seconds")
    redis_key = idempotency_key(key, tenant=tenant)
    token = secrets.token_hex(16)
    processing_ttl = min(settings.IDEMPOTENCY_PROCESSING_TTL, ttl_seconds)
    value = f"{PROCESSING}:{ttl_seconds}:{token}" + (f":{_running.encode()}" if _running else "")
    client = get_redis()
    pttl = None
    for _ in range(3):  # a take-over lost to a change of the claim looks again; rarely more than once
        reply = _script(_CLAIM)(keys=[redis_key], args=[value, processing_ttl], client=client)
        if reply is None:
            _own_claims.remember(redis_key, token)
            return ClaimResult(acquired=True, state="new", key=redis_key, token=token)
        current, pttl = reply
        if current == DONE.encode():
            logger.debug("idempotency key already done key=%s", redis_key)
            return ClaimResult(acquired=False, state=DONE, key=redis_key)
        holder = Holder.of_claim(current)
        if holder is None or holder.alive():
            break
        if _script(_TAKE_OVER)(keys=[redis_key], args=[current, value, processing_ttl], client=client):
            logger.warning(
                "idempotency: took over the claim of a dead holder job=%s execution=%s queue=%s key=%s",
                holder.job_id, holder.execution_id, holder.queue, redis_key,
            )
            _own_claims.remember(redis_key, token)
            return ClaimResult(acquired=True, state="new", key=redis_key, token=token, taken_over=True)
    logger.debug("idempotency key still processing key=%s", redis_key)
    return ClaimResult(acquired=False, state=PROCESSING, key=redis_key, retry_after=_retry_after(pttl))


def complete(key: Name, *, token: str | None = None, ttl_seconds: int | None = None, tenant: Any = None) -> bool:
    """Mark ``key`` done for ``ttl_seconds`` (default: the TTL it was claimed with). Return True if done.

    With ``token`` (default: this thread's own claim on ``key``, if any), only that claim is
    completed: False if another caller holds the key now. A key nobody holds is marked done.
    """
    if ttl_seconds is not None and (not isinstance(ttl_seconds, int) or ttl_seconds < 1):
        raise ValueError("ttl_seconds must be a positive whole number of seconds")
    redis_key = idempotency_key(key, tenant=tenant)
    token = _own_claims.token(redis_key, token)
    done = bool(
        _script(_COMPLETE)(keys=[redis_key], args=[token, ttl_seconds or 0, ttl("idempotency")], client=get_redis())
    )
    if done:
        _own_claims.forget(redis_key, token)
    return done


def release(key: Name, *, token: str | None = None, tenant: Any = None) -> bool:
    """Free a ``processing`` claim so the key can be claimed again; a ``done`` key stays done.

    With ``token`` (default: this thread's own claim on ``key``, if any), only that claim is
    freed. Return True if a claim was freed.
    """
    redis_key = idempotency_key(key, tenant=tenant)
    token = _own_claims.token(redis_key, token)
    released = bool(_script(_RELEASE)(keys=[redis_key], args=[token], client=get_redis()))
    if released:
        _own_claims.forget(redis_key, token)
    return released


@contextmanager
def claim(key: Name, *, ttl_seconds: int = 86400, tenant: Any = None) -> Iterator[ClaimResult]:
    """Claim ``key`` for the block: complete it when the block ends, release it if it raises.

    The block must check ``.acquired`` and skip its work when False. Only a ``done`` key is a
    finished duplicate; in a job, a key still ``processing`` elsewhere must not end the job as if
    the work were done (``@idempotent`` does this for you)::

        with claim(f"webhook:shopify:{event_id}") as c:
            if c.state == "done":
                return
            if not c.acquired:
                raise ClaimHeld(c.retry_after or 1, reason=f"{c.key} is being processed")
            process(event)
    """
    result = try_acquire_lock(key, ttl_seconds=ttl_seconds, tenant=tenant)
    if not result.acquired:
        yield result
        return
    try:
        yield result
    except BaseException:
        try:
            release(key, token=result.token, tenant=tenant)
        except Exception:  # the claim still expires by itself; keep the block's own error
            logger.warning("idempotency release failed key=%s", result.key, exc_info=True)
        raise
    if not complete(key, token=result.token, ttl_seconds=ttl_seconds, tenant=tenant):
        logger.warning("idempotency claim expired and was taken over before completion key=%s", result.key)


F = TypeVar("F", bound=Callable[..., Any])


def idempotent(key_func: Callable[..., Name], *, ttl_seconds: int = 86400) -> Callable[[F], F]:
    """Run the decorated function at most once per ``key_func(*args, **kwargs)``.

    A call whose key is done returns None without running; a call that raises releases the key
    so a retry runs again. A call whose key is still processing elsewhere raises ``ClaimHeld``
    (in a job: deferred, then run again), so it never reports success for work not done.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with claim(key_func(*args, **kwargs), ttl_seconds=ttl_seconds) as result:
                if result.acquired:
                    return func(*args, **kwargs)
                if result.state == DONE:
                    logger.info("duplicate skipped func=%s key=%s", func.__name__, result.key)
                    return None
                wait = result.retry_after or 1.0
                logger.info("key still processing func=%s key=%s: again in %.0fs", func.__name__, result.key, wait)
                raise ClaimHeld(wait, reason=f"{result.key} is being processed")

        return wrapper  # type: ignore[return-value]

    return decorate
