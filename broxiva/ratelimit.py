"""Rate limits for external APIs, shared by every process, and job deferral.

``RateLimiter`` implements GCRA, the generic cell rate algorithm (the "virtual scheduling" form
of a leaky bucket). One Redis key per limit (and tenant) holds the theoretical arrival time
(TAT): the moment the limiter would be idle again if every admitted request took its
``period_seconds / limit`` share. A request is admitted when ``TAT - now ≤ burst · interval``
and then pushes TAT one interval further. So at most ``burst + 1`` pass at once, and over any
window ``W`` at most ``burst + 1 + W / interval``: ``limit`` per ``period_seconds`` on average.

Read, decide and write happen in one Lua script using Redis's own clock (``TIME``), so many
processes on many machines (with skewed clocks) share one exact budget; a read-compute-write
from Python would let concurrent callers read the same TAT and all pass.

In a job, being limited (or an upstream ``429`` with ``Retry-After``) must not spend one of the
job's attempts: raise ``DeferJob(seconds)`` (``defer_if_limited`` does it for a limiter) and
``broxiva.worker.BroxivaWorker`` schedules the same job again after the wait with its
``retries_left`` untouched (``reschedule_deferred_job`` below).
"""

from __future__ import annotations

import email.utils
import functools
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from redis.commands.core import Script

from broxiva.connections import get_redis
from broxiva.keys import Name, build_key, split_name

if TYPE_CHECKING:
    from rq.job import Job
    from rq.queue import Queue
    from rq.worker import BaseWorker

logger = logging.getLogger(__name__)

# GCRA. KEYS[1] the TAT key; ARGV[1] emission interval (µs); ARGV[2] burst tolerance (µs).
# Return 0 when admitted, else the µs to wait before a request would be.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return math.ceil(wait) end
-- Whole µs, rounded up: a double near 1.8e15 has no room for fractions, and rounding down
-- would admit a little more than the limit.
local new_tat = math.ceil(tat + interval)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return 0
"""


@functools.cache
def _gcra() -> Script:
    return get_redis().register_script(_GCRA)


class RateLimiter:
    """Admit ``limit`` calls per ``period_seconds`` on average, plus ``burst`` more at once.

    ``name`` is colon-namespaced like a lock resource (``"shopify:admin-api"``, or a tuple of parts
    when one comes from outside); the counter lives at ``ratelimit:[tenant:]<name>`` and expires
    by itself once the limiter is idle.
    """

    def __init__(self, name: Name, limit: int, period_seconds: float, burst: int | None = None) -> None:
        self.parts = split_name(name)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError("limit must be a positive integer")
        if isinstance(period_seconds, bool) or not math.isfinite(period_seconds) or period_seconds <= 0:
            raise ValueError("period_seconds must be a positive, finite number")
        if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int) or burst < 0):
            raise ValueError("burst must be None or a non-negative integer")
        self.name = ":".join(self.parts)
        self.limit = limit
        self.period_seconds = period_seconds
        self.burst = burst or 0
        self.interval_us = period_seconds * 1_000_000 / limit
        if self.interval_us < 1:
            raise ValueError("a limiter admits at most 1,000,000 calls per second (its clock counts microseconds)")
        self.tolerance_us = self.interval_us * self.burst

    def __repr__(self) -> str:
        return f"RateLimiter({self.name!r}, {self.limit}, {self.period_seconds}, burst={self.burst})"

    def key(self, tenant: Any = None) -> str:
        return build_key("ratelimit", *self.parts, tenant=tenant)

    def acquire(self, tenant: Any = None) -> float:
        """Take one slot. Return 0.0 to go ahead, else the seconds to wait (nothing was taken)."""
        wait_us = _gcra()(
            keys=[self.key(tenant)], args=[repr(self.interval_us), repr(self.tolerance_us)], client=get_redis()
        )
        return int(wait_us) / 1_000_000

    def reset(self, tenant: Any = None) -> None:
        """Forget the history: the next calls get the full burst again."""
        get_redis().delete(self.key(tenant))


class DeferJob(Exception):  # noqa: N818 -- a control-flow signal to the worker, not an error
    """Raised by a job to run again after ``seconds`` without spending one of its attempts."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("a deferral needs a finite, non-negative number of seconds")
        super().__init__(f"deferred {seconds:.3f}s" + (f": {reason}" if reason else ""))
        self.seconds = seconds
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's default rebuilds from the message, which __init__ cannot parse back.
        return (type(self), (self.seconds, self.reason))


def defer_if_limited(limiter: RateLimiter, tenant: Any = None) -> None:
    """Take a slot from ``limiter`` or raise ``DeferJob`` for the wait it reports."""
    wait = limiter.acquire(tenant)
    if wait > 0:
        raise DeferJob(wait, reason=f"rate limit {limiter.name}")


def retry_after_seconds(value: str | None, *, default: float = 60, maximum: float = 3600) -> float:
    """Parse an HTTP ``Retry-After`` (delay-seconds or an HTTP-date) into seconds from now.

    Missing or unreadable values give ``default``; the result is capped at ``maximum`` so a
    hostile or broken upstream cannot park a job for days.
    """
    if value is None or not value.strip():
        return min(default, maximum)
    text = value.strip()
    if text.isascii() and text.isdigit():  # RFC 9110 delay-seconds; "²".isdigit() too, but float() refuses it
        return min(float(text), maximum)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return min(default, maximum)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - datetime.now(UTC)).total_seconds(), 0.0), maximum)


def defer_for_retry_after(value: str | None, *, reason: str = "upstream 429", default: float = 60) -> DeferJob:
    """Return the ``DeferJob`` for an upstream ``429``'s ``Retry-After`` header (raise it)."""
    return DeferJob(retry_after_seconds(value, default=default), reason=reason)


DEFERRALS_META = "broxiva_deferrals"


def can_defer(job: Job) -> bool:
    """Return True while ``job`` may still be deferred (fewer than ``JOB_MAX_DEFERRALS`` so far)."""
    return int(job.meta.get(DEFERRALS_META, 0)) < settings.JOB_MAX_DEFERRALS


def reschedule_deferred_job(worker: BaseWorker, job: Job, queue: Queue, deferral: DeferJob) -> bool:
    """Put ``job`` back on ``queue`` to run after ``deferral.seconds``; return False to fail it instead.

    Called by the worker instead of its failure handling. ``retries_left`` is not touched, so the
    deferral costs no attempt; the job's status becomes ``scheduled`` and RQ's scheduler
    (``--with-scheduler``) enqueues it when due. After ``JOB_MAX_DEFERRALS`` deferrals the job is
    handled as an ordinary failure, so a limit that never clears cannot loop it forever.
    """
    from rq.job import JobStatus

    if not can_defer(job):
        logger.warning("job deferred too often job=%s queue=%s: failing it", job.id, job.origin)
        return False
    deferrals = int(job.meta.get(DEFERRALS_META, 0)) + 1
    job.meta[DEFERRALS_META] = deferrals
    # RQ's ScheduledJobRegistry scores by whole seconds, truncating: round up instead, so the job
    # never runs before its wait is over (it would only be limited and deferred again).
    due = datetime.now(UTC) + timedelta(seconds=deferral.seconds)
    run_at = datetime.fromtimestamp(math.ceil(due.timestamp()), UTC)
    with worker.connection.pipeline() as pipeline:
        job.set_status(JobStatus.SCHEDULED, pipeline=pipeline)
        worker.cleanup_execution(job, pipeline=pipeline)
        queue.schedule_job(job, run_at, pipeline=pipeline)  # saves the job, meta included
        pipeline.execute()
    logger.info(
        "job deferred job=%s queue=%s wait=%.3fs deferrals=%d reason=%s",
        job.id, job.origin, deferral.seconds, deferrals, deferral.reason,
    )
    return True
