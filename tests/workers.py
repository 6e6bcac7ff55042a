"""Real rqworker processes for tests: started, watched, and stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
# Every worker start_worker() started, so that tests/conftest.py can stop the ones a test left
# running (it failed before its own stop()): left alone, they would keep taking the next tests'
# jobs from this process's queues.
_started: list[subprocess.Popen] = []


def flush_test_redis() -> None:
    import redis

    for url in (settings.REDIS_URL, settings.REDIS_QUEUE_URL):
        db = int(url.rsplit("/", 1)[1])
        if db not in (int(os.environ["REDIS_DB"]), int(os.environ["REDIS_QUEUE_DB"])):
            raise RuntimeError(f"refusing to flush Redis DB {db}: it is not a test database")
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()


def worker_env(**extra: str) -> dict[str, str]:
    """Return the environment for a child process that shares this test's databases."""
    env = dict(os.environ)
    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        user, host, port = db["USER"] or "postgres", db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        env["DATABASE_URL"] = f"postgres://{user}@{host}:{port}/{db['NAME']}"
    env["PYTHONPATH"] = str(ROOT)
    env["DJANGO_SETTINGS_MODULE"] = "broxiva.settings"
    env.update(extra)
    return env


def start_worker(*queues: str, burst: bool = False, scheduler: bool = True, extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> subprocess.Popen:
    from broxiva.queues import PRIORITY_ORDER, rq_name

    names = [rq_name(q) for q in (queues or PRIORITY_ORDER)]
    cmd = [sys.executable, str(ROOT / "manage.py"), "rqworker", *names]
    if burst:
        cmd.append("--burst")
    if scheduler:
        cmd.append("--with-scheduler")
    cmd.extend(extra_args)
    # Output goes to an unlinked temporary file, not a pipe: a chatty worker would fill a pipe
    # that nobody reads until stop() and block mid-job.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(cmd, cwd=ROOT, env=env or worker_env(), stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    process.log = log  # type: ignore[attr-defined]
    _started.append(process)
    return process


def output(process: subprocess.Popen) -> str:
    """Return what a worker started by ``start_worker`` has printed so far."""
    log = process.log  # type: ignore[attr-defined]
    log.seek(0)
    return log.read().decode(errors="replace")


def stop(process: subprocess.Popen, *, timeout: float = 15) -> str:
    """Send SIGTERM (RQ's warm shutdown), wait, kill if needed; return the process output."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return output(process)


def stop_leftover_workers() -> list[str]:
    """Stop the workers started since the last call that still run; return their command lines."""
    left = [process for process in _started if process.poll() is None]
    _started.clear()
    for process in left:
        stop(process, timeout=5)
    return [" ".join(map(str, process.args[1:])) for process in left]


@contextmanager
def running_worker(*queues: str, **kwargs) -> Iterator[subprocess.Popen]:
    process = start_worker(*queues, **kwargs)
    try:
        yield process
    finally:
        output = stop(process)
        if os.environ.get("BROXIVA_TEST_SHOW_WORKER"):
            print(output)


def wait_for(condition: Callable[[], object], *, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    """Poll until ``condition()`` is truthy and return its value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
