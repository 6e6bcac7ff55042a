"""Redis connections, one pool per process.

``get_redis()`` is the main DB (caches, locks, idempotency, rate limits); queue data lives in
``REDIS_QUEUE_DB`` and is reached through django-rq's queues (``broxiva.queues.get_queue``) or,
for reads that bypass RQ, ``client_for(settings.REDIS_QUEUE_URL)``. Both go through
Sentinel when ``REDIS_SENTINELS`` is set (DESIGN.md §2): the URLs then name the master, and
``client_for()`` asks the sentinels for its address, again after a failover.
"""

from __future__ import annotations

import os
from functools import lru_cache

import redis
from django.conf import settings
from redis.connection import SSLConnection, parse_url
from redis.sentinel import Sentinel

# Timeouts of the clients we build (django-rq builds its own for the workers' queue access).
_OPTIONS = {"socket_connect_timeout": 5, "socket_timeout": 10, "health_check_interval": 30}


@lru_cache(maxsize=8)
def _client(url: str, pid: int, sentinels: tuple[tuple[str, int], ...]) -> redis.Redis:
    # Keyed by pid: a forked rqworker child must not share its parent's sockets.
    if not sentinels:
        return redis.Redis.from_url(url, **_OPTIONS)
    options = parse_url(url)  # host is the master's name; db, password (and username) apply to it
    master = options.pop("host")
    options.pop("port", None)
    if options.pop("connection_class", None) is SSLConnection:  # rediss:// (REDIS_SSL)
        options["ssl"] = True
    sentinel = Sentinel(list(sentinels), sentinel_kwargs=dict(settings.REDIS_SENTINEL_KWARGS))
    return sentinel.master_for(master, **options, **_OPTIONS)


def client_for(url: str) -> redis.Redis:
    """Return this process's client for a Redis database URL (``REDIS_URL``, ``REDIS_QUEUE_URL``).

    With ``REDIS_SENTINELS`` set, the client reaches the master elected for the URL's host (the
    master name) and follows it across failovers; otherwise it connects to the URL itself.
    """
    sentinels = tuple(tuple(address) for address in getattr(settings, "REDIS_SENTINELS", ()))
    return _client(url, os.getpid(), sentinels)


def get_redis() -> redis.Redis:
    """Return the client for the main Redis DB (REDIS_URL / REDIS_DB)."""
    return client_for(settings.REDIS_URL)

