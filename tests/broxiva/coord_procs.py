"""Run a function in several real OS processes that start together, and collect their results.

Processes are forked from the test process (Django is already set up there), so each child has
its own Redis connection (``get_redis()`` keys its pool by pid) and real parallelism against
the real Redis server.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import traceback
from collections.abc import Callable
from typing import Any


def _child(target: Callable[..., Any], index: int, barrier: Any, results: Any, args: tuple[Any, ...]) -> None:
    try:
        barrier.wait(timeout=30)
        results.put((index, True, target(index, *args)))
    except BaseException:
        results.put((index, False, traceback.format_exc()))


def run_processes(target: Callable[..., Any], count: int, *args: Any, timeout: float = 60) -> list[Any]:
    """Run ``target(index, *args)`` in ``count`` forked processes released by one barrier.

    Return the results in index order; raise AssertionError with the child's traceback if any
    child failed.
    """
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(count)
    results = ctx.Queue()
    processes = [ctx.Process(target=_child, args=(target, i, barrier, results, args)) for i in range(count)]
    for process in processes:
        process.start()
    collected: dict[int, Any] = {}
    errors: list[str] = []
    try:
        for _ in range(count):
            index, ok, value = results.get(timeout=timeout)
            if ok:
                collected[index] = value
            else:
                errors.append(f"process {index}:\n{value}")
    except queue_module.Empty:
        errors.append(f"only {len(collected) + len(errors)} of {count} processes reported within {timeout}s")
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
    if errors:
        raise AssertionError("\n".join(errors))
    return [collected[i] for i in range(count)]
