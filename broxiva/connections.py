"""Redis connections, one pool per process.

``get_redis()`` is the main DB (caches, locks, idempotency, rate limits); queue data lives in
``REDIS_QUEUE_DB`` and is reached through django-rq (``get_queue_redis()``).
"""

from __future__ import annotations

import os
from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=4)
def _client(url: str, pid: int) -> redis.Redis:
    # Keyed by pid: a forked rqworker child must not share its parent's sockets.
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10, health_check_interval=30)


def get_redis() -> redis.Redis:
    """Return the client for the main Redis DB (REDIS_URL / REDIS_DB)."""
    return _client(settings.REDIS_URL, os.getpid())


def get_queue_redis() -> redis.Redis:
    """Return the client for the queue Redis DB (REDIS_QUEUE_DB), as django-rq uses it."""
    import django_rq

    from broxiva.queues import rq_name

    return django_rq.get_connection(rq_name("email"))
