"""Jobs for the shutdown tests: long on their first run, quick afterwards, and saying how they ended."""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import transaction

from broxiva.models import Alert


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def runs(marker: str) -> list[str]:
    return [value.decode() for value in client().lrange(f"test:shutdown:{marker}", 0, -1)]


def long_the_first_time(marker: str) -> str:
    redis_client = client()
    run = redis_client.rpush(f"test:shutdown:{marker}", "started")
    try:
        if run == 1:
            with transaction.atomic():  # rolled back when the job is put back
                Alert.objects.create(source="shutdown-test", subject=f"half-done {marker}")
                try:
                    time.sleep(120)
                except Exception:  # a job's broad handler must not swallow the shutdown
                    redis_client.rpush(f"test:shutdown:{marker}", "swallowed")
                    raise
        redis_client.rpush(f"test:shutdown:{marker}", "done")
        return marker
    finally:
        redis_client.rpush(f"test:shutdown:{marker}", "unwound")


def takes(marker: str, seconds: float) -> str:
    """A job that needs a few seconds, well within the grace of the test that stops its worker."""
    redis_client = client()
    redis_client.rpush(f"test:shutdown:{marker}", "started")
    time.sleep(seconds)
    redis_client.rpush(f"test:shutdown:{marker}", "done")
    return marker
