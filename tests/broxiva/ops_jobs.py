"""Job functions for the operations tests (run by real workers, importable by dotted path)."""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings
from rq import get_current_job

logger = logging.getLogger("tests.ops")


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def runs(marker: str) -> int:
    """How many times jobs with this marker started."""
    return _client().llen(f"ops:runs:{marker}")


def say(marker: str, tenant_id: int | None = None) -> str:
    logger.info("ops job says %s", marker)
    return marker


def fail_once_then_say(marker: str, tenant_id: int | None = None) -> str:
    if _client().rpush(f"ops:runs:{marker}", time.time()) == 1:
        logger.info("ops job fails %s", marker)
        raise RuntimeError(f"first run of {marker} fails")
    logger.info("ops job says %s", marker)
    return marker


def nap(marker: str, seconds: float, first_only: bool = False) -> str:
    """Record a start, sleep (only on the first run when ``first_only``), record an end."""
    job = get_current_job()
    client = _client()
    started = client.rpush(f"ops:runs:{marker}", job.id if job else "")
    if not first_only or started == 1:
        time.sleep(seconds)
    client.rpush(f"ops:done:{marker}", job.id if job else "")
    return marker
