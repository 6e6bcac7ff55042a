"""Reading one chunk ahead: PostgreSQL's time overlaps the formatting and compression.

A generation alternates between waiting on the database (a chunk of rows and its published
translations) and CPU work (escaping, gzip). ``read_ahead`` runs the reading in a thread with its
own database connection, at most ``depth`` chunks ahead, so memory stays flat; psycopg and zlib
release the GIL while they wait or compress, so both sides progress at once.

The thread's connection sees only committed rows. Inside a transaction (a caller's ``atomic()``,
a test's) the reading stays in the caller's thread, on the caller's connection.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django.db import connection, connections

T = TypeVar("T")

_DONE = object()


def can_read_ahead() -> bool:
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def read_ahead(produce: Callable[[], Iterator[T]], *, depth: int = 2) -> Iterator[T]:
    """Yield what ``produce()`` yields, produced in a thread up to ``depth`` items ahead."""
    if depth < 1 or not can_read_ahead():
        yield from produce()
        return
    items: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any, error: BaseException | None = None) -> bool:
        while not stop.is_set():
            try:
                items.put((item, error), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in produce():
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(None, exc)
        finally:
            connections.close_all()  # this thread's connections (Django keeps them per thread)

    thread = threading.Thread(target=run, name="sitemap-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()  # a consumer that stopped early (an error, a close) releases the reader
        thread.join()
