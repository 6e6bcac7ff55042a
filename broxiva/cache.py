"""Cache-aside helpers on the main Redis DB, with TTLs from the key table (``broxiva.keys``).

Later workers use these instead of ad-hoc ``setex`` calls::

    rates = get_or_set(build_key("fx", "rates", "USD"), lambda: fetch_rates("USD"))

The TTL is the key's category TTL (``fx:`` 1 h, ``translation:`` 24 h, …) unless a caller
passes ``ttl_seconds``. Values are stored as JSON, so a cached value reads back exactly as a
fresh one would (convert ``Decimal`` to ``str`` before caching). A cache is an optimisation:
when Redis is unreachable, reads fall back to the loader and writes are skipped, each with a
warning, so an outage slows requests down instead of failing them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from redis.exceptions import RedisError

from broxiva.connections import get_redis
from broxiva.keys import CATEGORIES, split_name, ttl

logger = logging.getLogger(__name__)

T = TypeVar("T")
_MISSING = object()

# Categories of the coordination primitives, not cache entries: deleting or overwriting one of
# their keys through the cache would release a lock or an idempotency claim without its token.
NOT_CACHED = frozenset({"lock", "idempotency", "ratelimit"})


def key_ttl(key: str, *, category: str | None = None) -> int:
    """Return the TTL of ``key`` from the table: ``category``'s, or that of the key's own prefix.

    Raise ValueError for a key not built by ``build_key``, a lock/idempotency/rate-limit key, or
    one outside ``category``.
    """
    parts = split_name(key)
    prefix = parts[0]
    if prefix not in CATEGORIES or len(parts) < 2:
        raise ValueError(f"{key!r} is not a key from broxiva.keys.build_key")
    if prefix in NOT_CACHED:
        raise ValueError(f"{key!r} belongs to broxiva's {prefix} primitive, not to the cache")
    if category is not None and category != prefix:
        raise ValueError(f"{key!r} is not in category {category!r}")
    return ttl(prefix)


def _expiry(key: str, *, category: str | None, ttl_seconds: int | None) -> int:
    table_ttl = key_ttl(key, category=category)
    if ttl_seconds is None:
        return table_ttl
    # Redis's EX takes whole seconds: a float would be refused at write time and look like an outage.
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds < 1:
        raise ValueError("ttl_seconds must be a whole number of seconds, at least 1: cache entries always expire")
    return ttl_seconds


def _read(key: str) -> tuple[Any, bool]:
    """Return ``(value or _MISSING, reachable)``: a miss, a corrupt value and an outage all miss."""
    try:
        raw = get_redis().get(key)
    except RedisError as exc:
        logger.warning("cache read failed, loading instead key=%s error=%s", key, exc.__class__.__name__)
        return _MISSING, False
    if raw is None:
        return _MISSING, True
    try:
        return json.loads(raw), True
    except ValueError:
        logger.warning("cache value is not JSON, reloading key=%s", key)
        return _MISSING, True


def get_value(key: str, default: Any = None) -> Any:
    """Return the cached value of ``key``, or ``default`` when absent or Redis is down."""
    key_ttl(key)
    value, _ = _read(key)
    return default if value is _MISSING else value


def set_value(key: str, value: Any, *, category: str | None = None, ttl_seconds: int | None = None) -> bool:
    """Cache ``value`` (JSON) for the key's TTL. Return False if Redis refused the write."""
    seconds = _expiry(key, category=category, ttl_seconds=ttl_seconds)
    payload = json.dumps(value, separators=(",", ":"))  # TypeError for values JSON cannot hold
    try:
        get_redis().set(key, payload, ex=seconds)
    except RedisError as exc:
        logger.warning("cache write failed key=%s error=%s", key, exc.__class__.__name__)
        return False
    return True


def get_or_set(
    key: str, loader: Callable[[], T], *, category: str | None = None, ttl_seconds: int | None = None
) -> T:
    """Return the cached value of ``key``; on a miss call ``loader()``, cache and return its result.

    ``loader`` exceptions propagate and nothing is cached. ``None`` is cached like any value.
    """
    seconds = _expiry(key, category=category, ttl_seconds=ttl_seconds)
    value, reachable = _read(key)
    if value is not _MISSING:
        return value
    value = loader()
    if reachable:  # after a failed read, a write would only wait out another timeout
        set_value(key, value, ttl_seconds=seconds)
    return value


def delete(*keys: str) -> int:
    """Invalidate ``keys``; return how many existed. Raises on a Redis outage (stale data must not stay)."""
    for key in keys:
        key_ttl(key)
    return int(get_redis().delete(*keys)) if keys else 0
