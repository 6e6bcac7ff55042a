"""The project's RQ worker classes (``RQ["WORKER_CLASS"]``, used by ``manage.py rqworker``).

On SIGTERM a worker finishes its current job **or puts it back**, then exits (see "Shutdown" in
``BroxivaWorkerMixin``): a deploy never waits for an hour-long sync and never loses it either.
``BroxivaWorkerMixin`` is where the project adds its job-wide
behaviour (deferral, permanent errors, crash recovery, retention, log context, database
connections that survive a PostgreSQL restart), so every ``rqworker`` process on every machine
gets it without extra flags. Two classes carry it:

- ``BroxivaWorker`` (the default) forks a work horse per job, as RQ's ``Worker`` does: a job that
  leaks memory, corrupts global state or segfaults takes only its own process down.
- ``BroxivaSimpleWorker`` runs jobs in the worker process itself (RQ's ``SimpleWorker``):
  several times the throughput for short jobs (``bench/bench_workers.py``), without that
  isolation. Choose it per worker with ``--worker-class broxiva.worker.BroxivaSimpleWorker``.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from contextlib import nullcontext
from typing import Any

from django.conf import settings
from django.db import connections
from rq import Queue, SimpleWorker, Worker
from rq.exceptions import DequeueTimeout
from rq.intermediate_queue import IntermediateQueue
from rq.utils import now

from broxiva import idempotency, recovery, retention
from broxiva.logs import job_log_context
from broxiva.queues import logical_name
from broxiva.ratelimit import DeferJob, can_defer, reschedule_deferred_job

SHUTDOWN_SIGNAL = signal.SIGUSR1
SHUTDOWN_REQUEUES_META = "shutdown_requeues"


class ShutdownRequeue(BaseException):  # noqa: N818 (not an error: an instruction, like SystemExit)
    """Raised inside a running job when its worker must stop: the job goes back to its queue.

    A ``BaseException`` so that a job's ``except Exception`` (recording a failure, retrying a
    call) lets it through; ``finally`` blocks and ``atomic()`` roll-backs still run.
    """


class BroxivaWorkerMixin:
    """The project's behaviour on top of an RQ worker class (first in the bases)."""

    _job_interruptible = False
    _shutdown_timer: threading.Timer | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        for option, value in recovery.worker_options().items():  # see "Operations" below
            kwargs.setdefault(option, value)
        super().__init__(*args, **kwargs)
        self.queue_class = moving_queue_class(self.queue_class)

    # --- Dequeueing: move, never pop ------------------------------------------------------------
    # RQ moves a job into the queue's intermediate list (LMOVE) only for a worker of one queue; a
    # worker of several pops it (BLPOP), and one killed between that pop and registering the job
    # as started leaves the job in no list at all: lost (tests/soak found it at one kill in ten).
    # moving_queue_class() moves for every worker, and the intermediate entry is dropped in the
    # same pipeline that registers the job as started, so a job is always in a list or a registry.
    def prepare_job_execution(self, job: Any, remove_from_intermediate_queue: bool = False) -> None:
        super().prepare_job_execution(job, remove_from_intermediate_queue=True)

    # --- Deferral (broxiva.ratelimit.DeferJob) -------------------------------------------------
    # A job that is rate-limited (or got an upstream 429) raises DeferJob: it must run again
    # after the wait without spending an attempt. RQ's handle_job_failure is where it spends one
    # (job.retry() decrements retries_left) or fails the job, so a deferral bypasses it.
    # perform_job calls handle_exception and then handle_job_failure from inside its ``except``
    # block, so the job's exception is still sys.exc_info() there.

    def handle_exception(self, job: Any, *exc_info: Any) -> None:
        if isinstance(exc_info[1], DeferJob) and can_defer(job):
            return  # not an error: no traceback in the log, no error handlers
        if isinstance(exc_info[1], ShutdownRequeue):
            return  # not an error either: the job is put back (handle_job_failure)
        # Before the error handlers (Sentry's RQ integration among them), so they see a job that
        # fails for good as such: it reports only failures with no retry left.
        self._spend_no_retries_on_permanent_error(job, exc_info[1])
        super().handle_exception(job, *exc_info)

    def handle_job_failure(self, job: Any, queue: Any, started_job_registry: Any = None, exc_string: str = "") -> None:
        error = sys.exc_info()[1]
        if isinstance(error, DeferJob) and reschedule_deferred_job(self, job, queue, deferral=error):
            return
        if isinstance(error, ShutdownRequeue):
            self._requeue_for_shutdown(job, queue)
            return
        self._spend_no_retries_on_permanent_error(job, error)
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string)

    def _spend_no_retries_on_permanent_error(self, job: Any, error: BaseException | None) -> None:
        # A permanent error (bad credentials, invalid data: providers say so with
        # ``transient=False``) stays permanent: fail the job now instead of burning retries.
        if getattr(error, "transient", None) is False and job.retries_left:
            self.log.info("job %s failed permanently, %d retries not used", job.id, job.retries_left)
            job.retries_left = 0

    # --- Shutdown --------------------------------------------------------------------------------
    # SIGTERM (a deploy, a scale-down) starts RQ's warm shutdown: no new job, the current one may
    # finish. If it has not finished after WORKER_SHUTDOWN_GRACE seconds (or at a second SIGTERM),
    # ShutdownRequeue is raised inside it: the job unwinds (finally blocks, transaction roll-back,
    # locks and idempotency claims released) and goes back to the FRONT of its queue with its
    # retry budget untouched, for another worker to run; then the worker exits. The process
    # manager's stop timeout only needs to exceed the grace by a few seconds, whatever the
    # queues' timeouts. A job interrupted this way runs again from its start, as after a crash:
    # jobs are at-least-once by contract (DESIGN.md §3). SIGKILL still leaves crash recovery.

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        # Inherited by forked work horses: the parent interrupts its horse's job with this signal.
        signal.signal(SHUTDOWN_SIGNAL, self._interrupt_job_signal)

    def _interrupt_job_signal(self, signum: int, frame: Any) -> None:
        if self._job_interruptible:  # only while the job's own code runs, not RQ's bookkeeping
            self._job_interruptible = False
            raise ShutdownRequeue(f"worker {self.name} is shutting down")

    def request_stop(self, signum: int, frame: Any) -> None:
        grace = settings.WORKER_SHUTDOWN_GRACE
        if grace > 0 and self._shutdown_timer is None and self.get_state() == "busy":
            self.log.info("warm shutdown: the current job has %ss to finish before it is put back", grace)
            self._shutdown_timer = threading.Timer(grace, self.interrupt_current_job)
            self._shutdown_timer.daemon = True
            self._shutdown_timer.start()
        super().request_stop(signum, frame)

    def request_force_stop(self, signum: int, frame: Any) -> None:
        # A second SIGTERM/SIGINT: put the job back now instead of killing it (RQ would SIGKILL the
        # horse and leave the job to crash recovery, spending an attempt a minute later).
        if self._shutdown_requested_date and (now() - self._shutdown_requested_date).total_seconds() < 1:
            return  # RQ ignores a duplicate signal within a second too
        if self.get_state() == "busy" and self.interrupt_current_job():
            return
        super().request_force_stop(signum, frame)

    def interrupt_current_job(self) -> bool:
        """Raise ShutdownRequeue inside the running job; return False if there is none to interrupt."""
        raise NotImplementedError

    def _requeue_for_shutdown(self, job: Any, queue: Any) -> None:
        count = int(job.meta.get(SHUTDOWN_REQUEUES_META, 0)) + 1
        job.meta[SHUTDOWN_REQUEUES_META] = count
        # Back on the queue first (status queued, retries_left as it was), then this execution's
        # record removed: a crash between the two leaves the job queued and "started" (recovery may
        # run it twice, which jobs allow), never in neither. enqueue_job opens its own transaction.
        queue.enqueue_job(job, at_front=True)
        with self.connection.pipeline() as pipeline:
            self.cleanup_execution(job, pipeline=pipeline)
            pipeline.execute()
        self.log.warning("job %s put back at the front of %s: the worker is shutting down (%d time(s))",
                         job.id, queue.name, count)

    def _perform_interruptibly(self, job: Any) -> None:
        original = job.perform

        def perform() -> Any:
            self._job_interruptible = True
            try:
                return original()
            finally:
                self._job_interruptible = False

        job.perform = perform

    # --- Operations (broxiva.recovery, broxiva.retention, broxiva.logs) -------------------------
    # Crash recovery: a short job lease, frequent registry maintenance, and idle waits no longer
    # than the maintenance interval, so a job whose worker died is found within ~70 s (RQ: ~11 min).
    # Around each job: the job's ids on every log line, and the queue's retention applied after it.

    def get_heartbeat_ttl(self, job: Any) -> int:
        # RQ: min(time left, interval) + 60 s. The worker renews every interval until it kills a
        # job that overran its timeout, so interval + grace is enough, and ends sooner.
        return recovery.heartbeat_ttl(self.job_monitoring_interval)

    @property
    def dequeue_timeout(self) -> int:
        # An idle worker only runs maintenance between two waits for a job.
        return max(1, min(self.worker_ttl - 15, self.maintenance_interval))

    def clean_registries(self) -> None:
        recovery.worker_maintenance(self)
        self.last_cleaned_at = now()

    def maintain_heartbeats(self, job: Any) -> None:
        # Called every job_monitoring_interval while a forked job runs: keep maintaining the
        # queues then too, or a queue whose workers are all busy in long jobs would find a dead
        # worker's job only through the periodic sweep.
        super().maintain_heartbeats(job)
        if self.should_run_maintenance_tasks:
            try:
                for queue in self.queues:
                    # No intermediate-list recovery here: its failure path would clear this
                    # worker's current execution, which is the running job's.
                    recovery.maintain_queue(queue, exception_handlers=self._exc_handlers, handle_failure=None)
            except Exception:  # maintenance must never disturb the running job
                self.log.warning("maintenance during job %s failed", job.id, exc_info=True)
            self.last_cleaned_at = now()

    def execute_job(self, job: Any, queue: Any) -> None:
        with job_log_context(job):
            try:
                super().execute_job(job, queue)
            finally:
                self.apply_retention_after_job(job)

    # --- Database connections ------------------------------------------------------------------
    # A worker lives for days; its PostgreSQL backend may not (restart, failover, idle timeout,
    # pg_terminate_backend). As Django does around a request, stale connections are closed before
    # and after every job, wherever the job runs (this process, or the forked work horse). Closing
    # only drops a connection that had an error or outlived CONN_MAX_AGE; a connection that died
    # while idle is caught by CONN_HEALTH_CHECKS (settings.py), which pings it once before the
    # job's first query because close_old_connections() re-arms that check.

    def perform_job(self, job: Any, queue: Any) -> bool:
        close_stale_connections()
        # Idempotency claims made by the job record this execution as their holder, so the job's
        # retry after a crash can take them over (broxiva.idempotency).
        execution = self.execution
        self._perform_interruptibly(job)
        try:
            with idempotency.held_by_job(queue.name, job.id, execution.id) if execution else nullcontext():
                return super().perform_job(job, queue)
        finally:
            close_stale_connections()

    def apply_retention_after_job(self, job: Any) -> None:
        try:
            retention.trim_after_job(self.connection, logical_name(job.origin), job)
        except Exception:  # retention must never stop a worker; the periodic sweep catches up
            self.log.warning("retention after job %s failed", job.id, exc_info=True)


# How long an idle worker of several queues blocks on its first queue before looking at the
# others again (Redis cannot block on a move from several lists): the most a job waits for an idle
# worker on a queue other than the first.
IDLE_POLL_SECONDS = 0.5


@functools.cache
def moving_queue_class(queue_class: type[Queue]) -> type[Queue]:
    """``queue_class`` whose multi-queue dequeue moves jobs to intermediate lists instead of popping."""

    class MovingQueue(queue_class):  # type: ignore[misc, valid-type]
        @classmethod
        def lpop(cls, queue_keys: list[str], timeout: int | None, connection: Any = None) -> tuple[Any, Any] | None:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                for key in queue_keys:  # priority order
                    job_id = connection.lmove(key, IntermediateQueue.get_intermediate_queue_key(key))
                    if job_id is not None:
                        return key, job_id
                if deadline is None:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DequeueTimeout(timeout, queue_keys)
                first = queue_keys[0]
                job_id = connection.blmove(first, IntermediateQueue.get_intermediate_queue_key(first),
                                           min(IDLE_POLL_SECONDS, left))
                if job_id is not None:
                    return first, job_id

    MovingQueue.__name__ = MovingQueue.__qualname__ = f"Moving{queue_class.__name__}"
    return MovingQueue


def close_stale_connections() -> None:
    """Django's ``close_old_connections()``, sparing a connection inside ``atomic()``.

    A worker run in-process by a caller that holds a transaction (a test inside pytest-django's
    transaction) must not have that transaction's connection closed under it.
    """
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


class BroxivaWorker(BroxivaWorkerMixin, Worker):
    """Forks a work horse per job (isolation); the default."""

    def fork_work_horse(self, job: Any, queue: Any) -> None:
        # A forked child must never use the parent's database connection: two processes writing
        # to one socket corrupt the protocol, and a backend that died under the parent would fail
        # every horse until the worker restarts. So the parent closes its connections before each
        # fork (as django-rq's rqworker does once at start): the horse opens its own, and the
        # parent reconnects only if it needs the database again, which is rare (it talks to
        # Redis). Closing in the child instead would leave the parent's connection to be closed
        # later by both processes' finalizers, and would not help a parent whose backend died.
        connections.close_all()
        super().fork_work_horse(job, queue)

    def setup_work_horse_signals(self) -> None:
        # The horse ignores SIGTERM: a process manager that signals every process of the service
        # (systemd's default KillMode=control-group, Heroku) must not kill the job under its worker.
        # The worker decides: finish within the grace, or ShutdownRequeue (SHUTDOWN_SIGNAL).
        super().setup_work_horse_signals()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def interrupt_current_job(self) -> bool:
        horse = self.horse_pid
        if not horse:
            return False
        try:
            os.kill(horse, SHUTDOWN_SIGNAL)  # the horse raises ShutdownRequeue inside the job
        except ProcessLookupError:
            return False
        return True

    def perform_job(self, job: Any, queue: Any) -> bool:
        try:
            return super().perform_job(job, queue)
        finally:
            if self.is_horse:
                # The horse ends with os._exit(), which skips Django's clean-up: close its
                # connections here so PostgreSQL sees a clean goodbye, not a dropped socket.
                connections.close_all()


class BroxivaSimpleWorker(BroxivaWorkerMixin, SimpleWorker):
    """Runs jobs in its own process (throughput for short, trusted jobs).

    Nothing renews a job's lease while it runs in-process, so the lease is RQ's for simple
    workers (the job's timeout + 60 s), not the forking worker's short renewable one: a job
    outliving a short lease would be "recovered" and run twice. Crash recovery on a simple
    worker therefore takes up to the job's timeout + 60 s.
    """

    def get_heartbeat_ttl(self, job: Any) -> int:
        return SimpleWorker.get_heartbeat_ttl(self, job)

    def interrupt_current_job(self) -> bool:
        if not self._job_interruptible:
            return False
        if threading.current_thread() is threading.main_thread():  # from a SIGTERM handler: raise here
            self._interrupt_job_signal(SHUTDOWN_SIGNAL, None)
        os.kill(os.getpid(), SHUTDOWN_SIGNAL)  # from the grace timer: the main thread runs the job
        return True
