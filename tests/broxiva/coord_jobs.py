"""Job functions for the coordination tests (importable by the worker by dotted path)."""

from __future__ import annotations

import time

from rq import get_current_job

from broxiva.connections import get_redis
from broxiva.keys import build_key
from broxiva.ratelimit import DeferJob, RateLimiter, defer_if_limited


def runs_key(marker: str) -> str:
    return build_key("product", "test-runs", marker)


def deferred_once(marker: str, seconds: float) -> str:
    """Defer on the first run, succeed on the next one; every run's start time is recorded."""
    client = get_redis()
    job = get_current_job()
    runs = client.rpush(runs_key(marker), repr(time.time()))
    if runs == 1:
        raise DeferJob(seconds, reason="test")
    return f"ran {marker} retries_left={job.retries_left if job else None}"


def always_limited(marker: str) -> None:
    """Use the limiter's only slot of the second, then ask again: every run is deferred ~1 s."""
    get_redis().rpush(runs_key(marker), repr(time.time()))
    limiter = RateLimiter(f"test:{marker}", 1, 1.0)
    limiter.acquire()
    defer_if_limited(limiter)
