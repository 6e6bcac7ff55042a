"""Job functions used by the tests: importable by dotted path, as every job must be."""

from __future__ import annotations

import time

import redis
from django.conf import settings
from rq import get_current_job

from broxiva.queues import JobPayload, payload


def _log(key: str, value: str) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.rpush(key, value)


def record(marker: str) -> str:
    _log("test:record", marker)
    return marker


def always_fails(marker: str) -> None:
    _log(f"test:attempts:{marker}", repr(time.time()))
    raise RuntimeError(f"boom {marker}")


def sleeps(marker: str, seconds: float) -> None:
    job = get_current_job()
    _log(f"test:attempts:{marker}", repr(time.time()))
    time.sleep(seconds)
    _log(f"test:done:{marker}", job.id if job else "")


class GreetingJobData(JobPayload):
    tenant_id: int
    name: str
    shout: bool = False


@payload(GreetingJobData)
def greet_job(data: GreetingJobData) -> dict[str, str]:
    text = f"hello {data.name}"
    return {"text": text.upper() if data.shout else text}


class BadCredentials(Exception):
    """What a provider raises for an error that retrying cannot fix."""

    transient = False


def fails_permanently(marker: str) -> None:
    _log(f"test:attempts:{marker}", repr(time.time()))
    raise BadCredentials(f"invalid key for {marker}")
