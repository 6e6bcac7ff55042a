"""Periodic entries: declared as data in each app's ``schedules.py``, registered idempotently.

An app lists its entries in a module-level ``SCHEDULES`` list of ``Entry``. ``register()``
makes the scheduler hold exactly those: an entry is stored under the fixed job id
``periodic-<entry id>``, so registering twice (or restarting the scheduler, which registers on
start) leaves one entry per id; an entry whose definition changed is replaced; an entry removed
from the code is removed from Redis. Cron expressions are read in UTC (see
``broxiva.scheduler``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from croniter import croniter
from django.apps import apps

from broxiva.policies import MAINTENANCE_QUEUE
from broxiva.scheduler import LAST_RUN_META, TEMPLATE_META, UTCScheduler

logger = logging.getLogger(__name__)

_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
JOB_ID_PREFIX = "periodic-"
# The queue rq-scheduler is bound to (its default for jobs without one): the kernel's own.
SCHEDULER_QUEUE = MAINTENANCE_QUEUE


@dataclass(frozen=True)
class Entry:
    """One periodic job: ``cron`` (read in UTC) or ``interval`` seconds, never both."""

    id: str
    queue: str
    func: str
    description: str
    cron: str | None = None
    interval: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Put each run at the front of its queue: for the platform's own checks, which must not
    # wait behind the very backlog they are there to report.
    at_front: bool = False

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"schedule id {self.id!r} must be kebab-case")
        if (self.cron is None) == (self.interval is None):
            raise ValueError(f"schedule {self.id}: give exactly one of cron or interval")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValueError(f"schedule {self.id}: invalid cron expression {self.cron!r}")
        if self.interval is not None and self.interval < 1:
            raise ValueError(f"schedule {self.id}: interval must be a positive number of seconds")

    @property
    def job_id(self) -> str:
        """The template's id: ``periodic-<id>``, suffixed ``_<QUEUE_PREFIX>`` under a prefix.

        RQ's job ids are global in a Redis DB; entry ids never hold ``_``, so the suffix cannot
        make two deployments' ids collide (``broxiva.E003`` keeps the prefix to id characters).
        """
        from django.conf import settings

        suffix = f"_{settings.QUEUE_PREFIX}" if settings.QUEUE_PREFIX else ""
        return f"{JOB_ID_PREFIX}{self.id}{suffix}"

    def fingerprint(self) -> str:
        body = json.dumps(
            [self.queue, self.func, self.cron, self.interval, self.kwargs, self.at_front], sort_keys=True, default=str
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]


# The kernel's own entries, on the kernel's own queue (``maintenance``, served first by every
# ``manage.py worker``): no kernel job shows up on an app's queue, and none waits behind its backlog.
SCHEDULES: list[Entry] = [
    Entry(
        "queue-health-check", MAINTENANCE_QUEUE, "broxiva.jobs.queue_health_check_job",
        "Evaluate queue health; alert on state changes",
        cron="* * * * *",  # every minute, at second 0 (UTC)
    ),
    Entry(
        "retention-sweep", MAINTENANCE_QUEUE, "broxiva.jobs.retention_sweep_job",
        "Keep each queue's last keep_completed finished / keep_failed failed jobs",
        cron="* * * * *",  # every minute, at second 0 (UTC)
    ),
    Entry(
        "recovery-sweep", MAINTENANCE_QUEUE, "broxiva.jobs.recovery_sweep_job",
        "Retry or fail jobs abandoned by dead workers, on every queue",
        # Every minute: with the 40 s lease, a job abandoned while every worker of its queue is busy
        # in a long job is still found within 2 minutes (lease + 1 min + the scheduler's poll).
        cron="* * * * *",  # every minute, at second 0 (UTC)
    ),
    Entry(
        "outbox-relay", MAINTENANCE_QUEUE, "broxiva.jobs.outbox_relay_job",
        "Push the outbox jobs whose commit hook could not reach Redis",
        # Every minute: a job recorded while Redis was down reaches its queue within a minute of
        # Redis (and so the scheduler) coming back, plus the relay's grace period.
        cron="* * * * *",  # every minute, at second 0 (UTC)
    ),
]


def collect() -> list[Entry]:
    """Return every installed app's entries, refusing duplicate ids and invalid jobs."""
    from broxiva.queues import _prepare

    entries: list[Entry] = []
    seen: dict[str, str] = {}
    for config in apps.get_app_configs():
        try:
            module = import_module(f"{config.name}.schedules")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.schedules":
                raise
            continue
        for entry in getattr(module, "SCHEDULES", []):
            if entry.id in seen:
                raise ValueError(f"schedule id {entry.id!r} is declared by both {seen[entry.id]} and {config.name}")
            seen[entry.id] = config.name
            _prepare(entry.queue, entry.func, (), dict(entry.kwargs))  # same checks as enqueue()
            entries.append(entry)
    return entries


def get_scheduler(interval: int = 60) -> UTCScheduler:
    import django_rq

    from broxiva.queues import rq_name

    return django_rq.get_scheduler(rq_name(SCHEDULER_QUEUE), interval=interval)


def registered(scheduler: UTCScheduler | None = None) -> dict[str, Any]:
    """Return the registered template jobs keyed by entry id."""
    scheduler = scheduler or get_scheduler()
    return {
        job.meta[TEMPLATE_META]: job for job in scheduler.get_jobs() if job.meta.get(TEMPLATE_META) is not None
    }


def register(entries: list[Entry] | None = None, *, scheduler: UTCScheduler | None = None) -> dict[str, list[str]]:
    """Make the scheduler hold exactly ``entries`` (default: every app's). Return what changed."""
    from broxiva.locks import with_lock
    from broxiva.queues import _prepare, policy, rq_name

    if entries is None:
        entries = collect()
    else:
        for entry in entries:
            _prepare(entry.queue, entry.func, (), dict(entry.kwargs))
    scheduler = scheduler or get_scheduler()
    report: dict[str, list[str]] = {"added": [], "updated": [], "unchanged": [], "removed": []}
    # Two schedulers starting together must not interleave their compare-and-replace.
    with with_lock("schedules:register", ttl_seconds=60, wait_time_ms=30_000):
        existing = registered(scheduler)
        wanted = {entry.id: entry for entry in entries}
        for entry_id, job in existing.items():
            if entry_id not in wanted:
                scheduler.cancel(job)
                job.delete()
                report["removed"].append(entry_id)
        for entry in entries:
            job = existing.get(entry.id)
            if job is not None and job.meta.get("broxiva_fingerprint") == entry.fingerprint():
                report["unchanged"].append(entry.id)
                continue
            if job is not None:
                scheduler.cancel(job)
                job.delete()
            meta = {
                TEMPLATE_META: entry.id,
                "broxiva_queue": entry.queue,
                "broxiva_fingerprint": entry.fingerprint(),
                "broxiva_at_front": entry.at_front,
            }
            if job is not None and job.meta.get(LAST_RUN_META):
                meta[LAST_RUN_META] = job.meta[LAST_RUN_META]  # a changed entry still coalesces with its last run
            common = {
                "func": entry.func,
                "kwargs": dict(entry.kwargs),
                "id": entry.job_id,
                "queue_name": rq_name(entry.queue),
                "timeout": policy(entry.queue).timeout,
                "description": entry.description,
                "meta": meta,
                "result_ttl": -1,  # the template never runs; each fire is a new job with finite TTLs
            }
            if entry.cron is not None:
                scheduler.cron(entry.cron, **common)
            else:
                from datetime import UTC, datetime

                scheduler.schedule(datetime.now(UTC), interval=entry.interval, **common)
            report["updated" if job is not None else "added"].append(entry.id)
    logger.info(
        "schedules registered added=%s updated=%s removed=%s unchanged=%d",
        report["added"], report["updated"], report["removed"], len(report["unchanged"]),
    )
    return report


def entries_by_queue(entries: list[Entry] | None = None) -> dict[str, list[Entry]]:
    result: dict[str, list[Entry]] = {}
    for entry in collect() if entries is None else entries:
        result.setdefault(entry.queue, []).append(entry)
    return result
