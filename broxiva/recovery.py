"""Crash recovery: jobs whose worker died (SIGKILL, OOM, machine lost) are found and retried.

How RQ finds them: while a job runs, its worker renews the job's entry in the queue's
``StartedJobRegistry`` (a lease scored by expiry time) every ``job_monitoring_interval``. A
dead worker stops renewing; once the lease has expired, the next registry maintenance of *any*
worker on that queue (``StartedJobRegistry.cleanup``) hands the job to its retry policy: it is
rescheduled with the queue's backoff while it has retries left, and failed with
``AbandonedJobError`` when it has none.

RQ's defaults make that take up to ~11 minutes (lease 30 + 60 s, maintenance every 10 min, and
an idle worker only looks between 405 s waits for a job). ``BroxivaWorker`` tightens each term
from settings: lease ``WORKER_JOB_MONITORING_INTERVAL + WORKER_HEARTBEAT_GRACE`` (10 + 30 s),
maintenance every ``WORKER_MAINTENANCE_INTERVAL`` (30 s) and never waits for a job longer than
that, so an abandoned job is found within ``detection_bound()`` (~70 s), well inside 2 minutes.

A job the dead worker had popped but not yet registered as started sits in RQ's intermediate
list: it is handed to the same failure/retry path once seen there for ``WORKER_HEARTBEAT_GRACE``
(RQ waits a fixed minute). The ``recovery-sweep`` periodic entry runs the same clean-up for every
queue, so a queue whose workers are all busy in long jobs is still swept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from rq import worker_registration
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import clean_registries
from rq.utils import now

from broxiva.locks import LockResult, acquire_lock, release_lock
from broxiva.queues import PRIORITY_ORDER, EnqueueError, get_queue, logical_name

logger = logging.getLogger(__name__)


def worker_options() -> dict[str, int]:
    """RQ worker options that shorten abandoned-job detection (BroxivaWorker applies them)."""
    return {
        "maintenance_interval": settings.WORKER_MAINTENANCE_INTERVAL,
        "job_monitoring_interval": settings.WORKER_JOB_MONITORING_INTERVAL,
    }


def heartbeat_ttl(job_monitoring_interval: int) -> int:
    """Lease of a running job: the worker renews it every interval; the grace absorbs late renewals."""
    return int(job_monitoring_interval) + settings.WORKER_HEARTBEAT_GRACE


def detection_bound() -> int:
    """Worst case seconds from a worker's death to its job being found (lease + one maintenance)."""
    return heartbeat_ttl(settings.WORKER_JOB_MONITORING_INTERVAL) + settings.WORKER_MAINTENANCE_INTERVAL


def _lock_ttl() -> int:
    # RQ holds this lock for 899 s; a worker killed while holding it would stop every other worker
    # from cleaning the queue for 15 minutes. Ours expires after two maintenance periods.
    return max(60, 2 * settings.WORKER_MAINTENANCE_INTERVAL)


def maintenance_lock_resource(queue: Queue) -> tuple[str, ...]:
    # The RQ queue name, prefix included: deployments sharing a Redis DB keep their locks apart.
    return ("queue-maintenance", *queue.name.split(":"))


def acquire_maintenance_lock(queue: Queue) -> LockResult:
    """Try to take the queue's registry-maintenance lock (one process maintains a queue at a time).

    The kernel's token-checked lock, not RQ's ``Queue.acquire_maintenance_lock``: RQ deletes its
    key on release whoever holds it, so a holder whose lease ran out would free the next holder's
    lock and let a third process clean the queue alongside it.
    """
    return acquire_lock(maintenance_lock_resource(queue), ttl_seconds=_lock_ttl())


def _describe_abandoned(queue: Queue) -> list[str]:
    registry = queue.started_job_registry
    job_ids = registry.get_expired_job_ids()
    for job_id in job_ids:
        job = queue.fetch_job(job_id)
        if job is None:
            continue
        outcome = "retrying per policy" if job.retries_left else "out of attempts: failing it"
        logger.warning(
            "abandoned job job_id=%s queue=%s func=%s (its worker stopped renewing it): %s",
            job_id, queue.name, job.func_name, outcome,
        )
    return job_ids


def recover_intermediate(queue: Queue, handle_failure: Callable[[Job, Queue, str], Any]) -> list[str]:
    """Fail (→ retry policy) jobs popped by a worker that died before registering them as started."""
    intermediate = queue.intermediate_queue
    job_ids = intermediate.get_job_ids()
    if not job_ids:
        return []
    started = set(queue.started_job_registry.get_job_ids(cleanup=False))
    recovered = []
    grace = timedelta(seconds=settings.WORKER_HEARTBEAT_GRACE)
    for job_id in job_ids:
        if job_id in started:
            continue
        job = queue.fetch_job(job_id)
        if job is None or job.get_status(refresh=False) != JobStatus.QUEUED:
            # Gone, or already handled: a worker killed after registering the job as started
            # leaves it here too, and the started registry's clean-up has retried or failed it.
            intermediate.remove(job_id)
            continue
        if intermediate.set_first_seen(job_id):
            continue  # first sighting: a live worker registers it within milliseconds
        first_seen = intermediate.get_first_seen(job_id)
        if first_seen is not None and now() - first_seen > grace:
            logger.warning("abandoned job job_id=%s queue=%s was popped but never started: retrying per policy",
                           job_id, queue.name)
            handle_failure(job, queue, "Job was stuck in intermediate queue: its worker died after dequeuing it.")
            intermediate.remove(job_id)
            recovered.append(job_id)
    return recovered


def maintain_queue(queue: Queue, *, exception_handlers: list | None,
                   handle_failure: Callable[[Job, Queue, str], Any] | None) -> list[str]:
    """One queue's registry maintenance under its lock: RQ's clean-ups, recovery, retention.

    Return the ids of the abandoned jobs found (empty when another process holds the lock).
    """
    from broxiva.retention import trim_queue

    lock = acquire_maintenance_lock(queue)
    if not lock.acquired:
        return []
    try:
        abandoned = _describe_abandoned(queue)
        clean_registries(queue, exception_handlers)  # StartedJobRegistry.cleanup retries/fails them
        worker_registration.clean_worker_registry(queue)
        if handle_failure is not None:
            abandoned += recover_intermediate(queue, handle_failure)
        try:
            trim_queue(logical_name(queue.name), queue.connection)
        except EnqueueError:
            pass  # a queue outside the §4 table has no retention policy
        return abandoned
    finally:
        if not release_lock(lock.resource, lock.lock_id):
            logger.warning("maintenance of queue=%s outlived its %d s lock; another process may have run alongside",
                           queue.name, _lock_ttl())


def worker_maintenance(worker: Any) -> None:
    """``BroxivaWorker.clean_registries``: maintain each of the worker's queues."""
    for queue in worker.queues:
        maintain_queue(
            queue,
            exception_handlers=worker._exc_handlers,
            handle_failure=lambda job, q, exc: worker.handle_job_failure(job, q, exc_string=exc),
        )


def recover_abandoned(names: list[str] | tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """The periodic sweep: maintain every queue; return the abandoned job ids found per queue.

    Without a worker object, jobs stuck in the intermediate list are left to the workers.
    """
    found = {}
    for name in PRIORITY_ORDER if names is None else names:
        abandoned = maintain_queue(get_queue(name), exception_handlers=None, handle_failure=None)
        if abandoned:
            found[name] = abandoned
    return found
