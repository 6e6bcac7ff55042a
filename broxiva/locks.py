"""Distributed locks on the main Redis DB (the seed's ``DistributedLockService``).

Built on redis-py's ``Lock``: acquisition is one ``SET key token NX PX ttl``; release and
extension are redis-py's Lua compare-and-delete / compare-and-expire, so only the holder's token
can release or extend, and an expired lock that someone else took over is never touched.

A lock only avoids wasted or interleaved work: anything that must happen at most once is also
guarded in the database (DESIGN.md §3), because a holder that stalls past its TTL loses the lock
without knowing it. For critical sections longer than the TTL, ``with_lock(..., keep_alive=True)``
extends the lease from a background thread while the section runs.

Resources are colon-namespaced names (``schedules:register``, ``fx:refresh:USD``); the key is
``lock:[tenant:]<resource>``, each segment checked by ``broxiva.keys``.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from broxiva.connections import get_redis
from broxiva.keys import Name, build_key, split_name

logger = logging.getLogger(__name__)

# Longest pause between two acquisition attempts while waiting: short, because a waiter only
# notices a release by polling, and a lock is usually held for milliseconds.
MAX_POLL_SECONDS = 0.01


class LockNotAcquired(Exception):
    """``with_lock`` could not get the lock within its wait."""

    def __init__(self, resource: Name, wait_time_ms: int) -> None:
        super().__init__(f"lock {resource!r} is held elsewhere (waited {wait_time_ms} ms)")
        self.resource = resource
        self.wait_time_ms = wait_time_ms

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's default rebuilds from the message alone, which __init__ does not take.
        return (type(self), (self.resource, self.wait_time_ms))


@dataclass(frozen=True)
class LockResult:
    """Outcome of ``acquire_lock``: ``lock_id`` is the holder's token, None when not acquired."""

    acquired: bool
    lock_id: str | None
    resource: Name
    key: str


def lock_key(resource: Name, *, tenant: Any = None) -> str:
    """Return the Redis key of ``resource`` (``lock:[tenant:]a:b``); ValueError on a bad name."""
    return build_key("lock", *split_name(resource), tenant=tenant)


def _lock(key: str, ttl_seconds: float | None) -> Lock:
    # thread_local=False: the keep-alive thread must see the token the caller's thread set.
    return Lock(get_redis(), key, timeout=ttl_seconds, thread_local=False)


def _check_ttl(ttl_seconds: float) -> None:
    if not math.isfinite(ttl_seconds) or ttl_seconds < 0.001:
        raise ValueError(
            "ttl_seconds must be a finite number, at least 0.001: a lock without expiry outlives a crashed holder"
        )


def acquire_lock(resource: Name, *, ttl_seconds: float = 30, wait_time_ms: int = 0, tenant: Any = None) -> LockResult:
    """Try to take ``resource`` for ``ttl_seconds``; wait up to ``wait_time_ms`` for its holder.

    ``wait_time_ms=0`` makes one attempt and returns at once.
    """
    _check_ttl(ttl_seconds)
    if wait_time_ms < 0:
        raise ValueError("wait_time_ms must not be negative")
    key = lock_key(resource, tenant=tenant)
    token = secrets.token_hex(16)  # unpredictable and unique across forked processes
    wait = wait_time_ms / 1000
    acquired = _lock(key, ttl_seconds).acquire(
        blocking=wait > 0,
        blocking_timeout=wait,
        sleep=min(MAX_POLL_SECONDS, max(wait / 10, 0.001)),
        token=token,
    )
    if not acquired:
        logger.debug("lock busy key=%s waited_ms=%d", key, wait_time_ms)
    return LockResult(acquired=bool(acquired), lock_id=token if acquired else None, resource=resource, key=key)


def _held(key: str, lock_id: str, ttl_seconds: float | None) -> Lock:
    """A redis-py Lock that acts as the holder of ``lock_id`` (its token-checked Lua scripts decide)."""
    lock = _lock(key, ttl_seconds)
    lock.local.token = lock.redis.get_encoder().encode(lock_id)
    return lock


def release_lock(resource: Name, lock_id: str | None, *, tenant: Any = None) -> bool:
    """Release ``resource`` if ``lock_id`` holds it. Return True only when it did.

    A wrong token, or one whose lock expired (and may now be someone else's), releases nothing.
    """
    key = lock_key(resource, tenant=tenant)
    if not lock_id:
        return False
    lock = _held(key, lock_id, None)
    try:
        lock.release()
    except LockNotOwnedError:
        return False
    return True


def extend_lock(resource: Name, lock_id: str | None, ttl_seconds: float, *, tenant: Any = None) -> bool:
    """Set the remaining lease of ``resource`` to ``ttl_seconds`` if ``lock_id`` still holds it."""
    _check_ttl(ttl_seconds)
    key = lock_key(resource, tenant=tenant)
    if not lock_id:
        return False
    lock = _held(key, lock_id, ttl_seconds)
    try:
        return bool(lock.extend(ttl_seconds, replace_ttl=True))
    except LockNotOwnedError:
        return False


class _KeepAlive(threading.Thread):
    """Renews a held lock every third of its TTL until stopped, or until the lock is lost."""

    def __init__(self, result: LockResult, ttl_seconds: float, tenant: Any) -> None:
        super().__init__(name=f"lock-keepalive {result.key}", daemon=True)
        self.result = result
        self.ttl_seconds = ttl_seconds
        self.tenant = tenant
        self.stopped = threading.Event()
        self.lost = False

    def run(self) -> None:
        while not self.stopped.wait(self.ttl_seconds / 3):
            try:
                ok = extend_lock(self.result.resource, self.result.lock_id, self.ttl_seconds, tenant=self.tenant)
            except Exception:  # a Redis blip: try again next period, the lease still has 2/3 left
                logger.warning("lock keep-alive failed key=%s", self.result.key, exc_info=True)
                continue
            if not ok:
                self.lost = True
                logger.error("lock lost while held key=%s: another process may now hold it", self.result.key)
                return

    def stop(self) -> None:
        self.stopped.set()
        self.join()


@contextmanager
def with_lock(
    resource: Name,
    *,
    ttl_seconds: float = 30,
    wait_time_ms: int = 5000,
    keep_alive: bool = False,
    tenant: Any = None,
) -> Iterator[LockResult]:
    """Hold ``resource`` for the ``with`` block (or the decorated function's call).

    Raise ``LockNotAcquired`` if it is not free within ``wait_time_ms``. On exit the lock is
    released with its own token, even when the block raises; a lock that expired meanwhile is
    left alone (and logged). ``keep_alive=True`` renews the lease every ``ttl_seconds / 3``
    while the block runs, for sections that may outlast the TTL.
    """
    result = acquire_lock(resource, ttl_seconds=ttl_seconds, wait_time_ms=wait_time_ms, tenant=tenant)
    if not result.acquired:
        raise LockNotAcquired(resource, wait_time_ms)
    keeper = _KeepAlive(result, ttl_seconds, tenant) if keep_alive else None
    if keeper is not None:
        keeper.start()
    try:
        yield result
    finally:
        if keeper is not None:
            keeper.stop()
        try:
            released = release_lock(resource, result.lock_id, tenant=tenant)
        except Exception:
            # The lease expires by itself; do not hide the block's own exception behind Redis's.
            logger.warning("lock release failed key=%s", result.key, exc_info=True)
        else:
            if not released:
                logger.warning("lock expired before release key=%s ttl=%ss", result.key, ttl_seconds)
