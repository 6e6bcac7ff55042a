"""Job function for the Sentinel tests (importable by the worker by dotted path)."""

from __future__ import annotations

from broxiva.connections import get_redis
from broxiva.locks import acquire_lock, release_lock


def result_key(marker: str) -> str:
    return f"test:sentinel:{marker}"


def locked_write(marker: str) -> str:
    """Take and release a lock on the main DB, and record how this process reached Redis."""
    lock = acquire_lock(f"sentinel:{marker}", ttl_seconds=30)
    client = get_redis()
    released = release_lock(f"sentinel:{marker}", lock.lock_id)
    outcome = f"{type(client.connection_pool).__name__} acquired={lock.acquired} released={released}"
    client.set(result_key(marker), outcome)
    return outcome
