"""Helpers for the operations tests: loading queues fast, counting Redis round trips, killing workers."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from redis import Redis
from redis.client import Pipeline
from redis.connection import AbstractConnection
from rq.job import Job, JobStatus
from rq.utils import utcformat

from broxiva.queues import get_queue, job_options
from tests.workers import output, start_worker, worker_env


def fill_queue(queue_name: str, count: int, *, func: str = "tests.jobs.sample.record", args: tuple = ("x",),
               enqueued_at: datetime | None = None, batch: int = 5000) -> list[str]:
    """Put ``count`` real RQ jobs on a queue, fast: one job built by RQ, cloned under new ids.

    Each job hash is exactly what ``Queue.enqueue`` writes (RQ serialises the prototype), and
    its id is appended to the queue's list, so workers and the dashboard see ordinary jobs.
    """
    queue = get_queue(queue_name)
    options = job_options(queue_name)
    prototype = Job.create(func, args=args, connection=queue.connection, origin=queue.name,
                           timeout=options["timeout"], result_ttl=options["result_ttl"],
                           failure_ttl=options["failure_ttl"], retry=options["retry"], status=JobStatus.QUEUED)
    prototype.enqueued_at = enqueued_at or datetime.now(UTC)
    mapping = prototype.to_dict()
    mapping["enqueued_at"] = utcformat(prototype.enqueued_at)
    ids = []
    with queue.connection.pipeline(transaction=False) as pipe:
        for start in range(0, count, batch):
            chunk = [uuid.uuid4().hex for _ in range(min(batch, count - start))]
            for job_id in chunk:
                pipe.hset(Job.key_for(job_id), mapping=mapping)
            pipe.rpush(queue.key, *chunk)
            pipe.execute()
            ids.extend(chunk)
    return ids


class RoundTrips:
    """What this process sent to Redis: round trips (one per command or per pipeline) and commands."""

    def __init__(self) -> None:
        self.count = 0
        self.commands = 0


@contextmanager
def count_round_trips() -> Iterator[RoundTrips]:
    """Count every request written to any Redis connection while the block runs.

    redis-py sends one command, or a whole pipeline, with one ``send_packed_command`` call and
    then reads the replies: one call is one network round trip. Commands are counted where they
    are issued (a pipeline's stack, or a direct call).
    """
    counter = RoundTrips()
    send, execute, direct = AbstractConnection.send_packed_command, Pipeline.execute, Redis.execute_command

    def counting_send(self, command, check_health=True):
        counter.count += 1
        return send(self, command, check_health)

    def counting_execute(self, *args, **kwargs):
        counter.commands += len(self.command_stack)
        return execute(self, *args, **kwargs)

    def counting_direct(self, *args, **kwargs):
        counter.commands += 1
        return direct(self, *args, **kwargs)

    AbstractConnection.send_packed_command = counting_send
    Pipeline.execute, Redis.execute_command = counting_execute, counting_direct
    try:
        yield counter
    finally:
        AbstractConnection.send_packed_command = send
        Pipeline.execute, Redis.execute_command = execute, direct


class Output:
    """What a worker started by ``tests.workers.start_worker`` has printed (it logs to a file)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self._process = process

    @property
    def text(self) -> str:
        return output(self._process)

    def join(self) -> str:
        return self.text


def drained(process: subprocess.Popen) -> tuple[subprocess.Popen, Output]:
    return process, Output(process)


def fast_recovery_env(**extra: str) -> dict[str, str]:
    """Worker environment with a 1 s job lease renewal, 2 s grace and 2 s maintenance."""
    return worker_env(
        WORKER_MAINTENANCE_INTERVAL="2", WORKER_JOB_MONITORING_INTERVAL="1", WORKER_HEARTBEAT_GRACE="2", **extra
    )


def start_fast_worker(*queues: str, scheduler: bool = True, name: str | None = None,
                      extra_args: tuple[str, ...] = (), **extra_env: str) -> subprocess.Popen:
    """A real ``rqworker`` whose crash-recovery settings are shortened by ``fast_recovery_env``."""
    args = (*extra_args, "--name", name) if name else extra_args
    return start_worker(*queues, scheduler=scheduler, extra_args=args, env=fast_recovery_env(**extra_env))


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_hard(process: subprocess.Popen) -> None:
    """SIGKILL a worker and everything it started, as when its machine is lost.

    The worker's process group holds the worker and its scheduler; RQ puts each job's work
    horse in a group of its own, so the horse is found among the worker's descendants.
    """
    victims = [process.pid, *_descendants(process.pid)]
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=10)
