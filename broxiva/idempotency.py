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

Keys are colon-namespaced (``webhook:shopify:<event id>``), stored as
``idempotency:[tenant:]webhook:shopify:<event id>``; each segment is checked by ``broxiva.keys``.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from django.conf import settings
from redis.commands.core import Script

from broxiva.connections import get_redis
from broxiva.keys import Name, build_key, split_name, ttl

logger = logging.getLogger(__name__)

State = Literal["new", "processing", "done"]
DONE = "done"
PROCESSING = "processing"

# KEYS[1] key; ARGV[1] claim value; ARGV[2] processing expiry (s). Return the current value, or
# nil after claiming. One script so no other caller can slip in between the read and the write.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""

# KEYS[1] key; ARGV[1] token ('' = any claim); ARGV[2] done TTL (s), '0' = the claim's own TTL;
# ARGV[3] TTL when the claim is gone and none was given. Return 1 when the key is (now) done.
# A token completes its own claim or a key nobody holds any more (its claim expired and was not
# taken over), never another caller's claim.
_COMPLETE = """
local current = redis.call('GET', KEYS[1])
if current == 'done' then return 1 end
local claim_ttl, token
if current then claim_ttl, token = string.match(current, '^processing:(%d+):(.+)$') end
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
local token = string.match(current, '^processing:%d+:(.+)$')
if not token then return 0 end
if ARGV[1] ~= '' and token ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


@dataclass(frozen=True)
class ClaimResult:
    """``acquired`` is True for the one caller that claimed the key (``state == "new"``)."""

    acquired: bool
    state: State
    key: str
    token: str | None = None


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
    client = get_redis()
    current = _script(_CLAIM)(
        keys=[redis_key], args=[f"{PROCESSING}:{ttl_seconds}:{token}", processing_ttl], client=client
    )
    if current is None:
        _own_claims.remember(redis_key, token)
        return ClaimResult(acquired=True, state="new", key=redis_key, token=token)
    state: State = DONE if current == DONE.encode() else PROCESSING
    logger.debug("idempotency key already %s key=%s", state, redis_key)
    return ClaimResult(acquired=False, state=state, key=redis_key)


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

    The block must check ``.acquired`` and skip its work when False (a duplicate)::

        with claim(f"webhook:shopify:{event_id}") as c:
            if not c.acquired:
                return
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

    A duplicate call returns None without running; a call that raises releases the key so a
    retry runs again.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with claim(key_func(*args, **kwargs), ttl_seconds=ttl_seconds) as result:
                if not result.acquired:
                    logger.info("duplicate skipped func=%s key=%s state=%s", func.__name__, result.key, result.state)
                    return None
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
