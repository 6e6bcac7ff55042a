"""Job functions for the idempotency tests with real workers (importable by dotted path)."""

from __future__ import annotations

import time

import redis
from django.conf import settings
from rq import get_current_job

from broxiva.idempotency import idempotent


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def bodies(marker: str) -> list[str]:
    """The job ids whose run got past the claim, in order."""
    return [job_id.decode() for job_id in _client().lrange(f"claims:bodies:{marker}", 0, -1)]


def effects(marker: str) -> int:
    """How many times the side effect (the work the claim guards) happened."""
    return int(_client().get(f"claims:effects:{marker}") or 0)


@idempotent(lambda marker, seconds=0.0: f"test:claims:{marker}")
def apply_once(marker: str, seconds: float = 0.0) -> str:
    """Sleep ``seconds`` on the first run that gets the claim (the window to kill it in), then apply."""
    job = get_current_job()
    client = _client()
    if client.rpush(f"claims:bodies:{marker}", job.id if job else "") == 1:
        time.sleep(seconds)
    client.incr(f"claims:effects:{marker}")
    return "applied"
