"""Queue health (the seed's ``QueueHealthIndicator``) and the liveness check.

``queues_health()`` reads every queue's counts from RQ's Redis structures in **two pipelined
round trips**, whatever the number of jobs: the first fetches the list lengths and registry
sizes, each queue's worker keys and the ids at the head of its waiting list; the second fetches
those jobs' ``enqueued_at`` and those workers' last heartbeats. Nothing here iterates over jobs
or runs RQ's registry clean-ups (which requeue abandoned jobs as a side effect).

The oldest waiting job is looked for among the first ``OLDEST_SAMPLE`` ids of the list: RQ pops
from the head and appends at the tail, so the head holds the oldest jobs, except for the few
pushed to the front (``at_front``), which are new by definition.

Statuses and thresholds are DESIGN.md §6, read from settings (``HEALTH_*``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from redis import Redis
from rq.job import Job
from rq.queue import Queue
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.utils import utcparse
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from broxiva.connections import client_for
from broxiva.queues import PRIORITY_ORDER, policy, rq_name

logger = logging.getLogger(__name__)

OK, WARNING, CRITICAL = "ok", "warning", "critical"
UNKNOWN = "unknown"  # only the outbox's, when PostgreSQL cannot be asked
SEVERITY = {OK: 0, WARNING: 1, CRITICAL: 2}
OLDEST_SAMPLE = 10


@dataclass(frozen=True)
class Thresholds:
    waiting_warning: int
    waiting_critical: int
    failed_warning: int
    failed_critical: int
    oldest_warning: int
    oldest_critical: int
    worker_stale: int

    @classmethod
    def from_settings(cls) -> Thresholds:
        return cls(
            waiting_warning=settings.HEALTH_WAITING_WARNING,
            waiting_critical=settings.HEALTH_WAITING_CRITICAL,
            failed_warning=settings.HEALTH_FAILED_WARNING,
            failed_critical=settings.HEALTH_FAILED_CRITICAL,
            oldest_warning=settings.HEALTH_OLDEST_WARNING_SECONDS,
            oldest_critical=settings.HEALTH_OLDEST_CRITICAL_SECONDS,
            worker_stale=settings.HEALTH_WORKER_STALE_SECONDS,
        )


@dataclass
class QueueStats:
    waiting: int = 0
    active: int = 0
    failed: int = 0
    scheduled: int = 0
    deferred: int = 0
    finished: int = 0
    workers: int = 0
    oldest_waiting_age: float | None = None


def connection() -> Redis:
    """Return the queue database's client (REDIS_QUEUE_DB), shared by this process."""
    # One client per process (django-rq builds a new pool on every get_queue()): a health probe
    # every few seconds must not open new connections each time. Through Sentinel when set.
    return client_for(settings.REDIS_QUEUE_URL)


def _keys(rq_queue: str) -> dict[str, str]:
    return {
        "waiting": Queue.redis_queue_namespace_prefix + rq_queue,
        "active": StartedJobRegistry.key_template.format(rq_queue),
        "failed": FailedJobRegistry.key_template.format(rq_queue),
        "scheduled": ScheduledJobRegistry.key_template.format(rq_queue),
        "deferred": DeferredJobRegistry.key_template.format(rq_queue),
        "finished": FinishedJobRegistry.key_template.format(rq_queue),
        "workers": WORKERS_BY_QUEUE_KEY % rq_queue,
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def collect(names: list[str] | tuple[str, ...] | None = None, *, now: datetime | None = None,
            client: Redis | None = None) -> dict[str, QueueStats]:
    """Return the raw numbers of each queue (default: all, in priority order), in two round trips."""
    names = list(PRIORITY_ORDER if names is None else names)
    client = client or connection()
    now = now or datetime.now(UTC)
    stale = Thresholds.from_settings().worker_stale
    counted = ("waiting", "active", "failed", "scheduled", "deferred", "finished")

    with client.pipeline(transaction=False) as pipe:
        for name in names:
            keys = _keys(rq_name(name))
            pipe.llen(keys["waiting"])
            for field in counted[1:]:
                pipe.zcard(keys[field])
            pipe.smembers(keys["workers"])
            pipe.lrange(keys["waiting"], 0, OLDEST_SAMPLE - 1)
        replies = pipe.execute()

    stats: dict[str, QueueStats] = {}
    worker_keys: dict[str, set[str]] = {}
    heads: dict[str, list[str]] = {}
    width = len(counted) + 2
    for index, name in enumerate(names):
        row = replies[index * width:(index + 1) * width]
        stats[name] = QueueStats(**{field: int(row[i]) for i, field in enumerate(counted)})
        worker_keys[name] = {_text(key) for key in row[len(counted)]}
        heads[name] = [_text(job_id) for job_id in row[len(counted) + 1]]

    all_workers = sorted(set().union(*worker_keys.values())) if worker_keys else []
    sampled = [(name, job_id) for name in names for job_id in heads[name]]
    if not all_workers and not sampled:
        return stats
    with client.pipeline(transaction=False) as pipe:
        for key in all_workers:
            pipe.hget(key, "last_heartbeat")
        for _, job_id in sampled:
            pipe.hget(Job.key_for(job_id), "enqueued_at")
        replies = pipe.execute()

    alive = set()
    for key, beat in zip(all_workers, replies[: len(all_workers)], strict=True):
        if beat is not None and (now - utcparse(_text(beat))).total_seconds() <= stale:
            alive.add(key)
    for name in names:
        stats[name].workers = len(worker_keys[name] & alive)
    for (name, _), enqueued_at in zip(sampled, replies[len(all_workers):], strict=True):
        if enqueued_at is None:  # deleted job whose id is still listed
            continue
        age = max(0.0, (now - utcparse(_text(enqueued_at))).total_seconds())
        current = stats[name].oldest_waiting_age
        stats[name].oldest_waiting_age = age if current is None else max(current, age)
    return stats


def evaluate(stats: QueueStats, thresholds: Thresholds) -> tuple[str, list[str]]:
    """Return a queue's status (ok/warning/critical) and the reasons for it."""
    findings: list[tuple[str, str]] = []

    def check(value: float | None, warning: float, critical: float, text: str, unit: str = "") -> None:
        if value is None:
            return
        if value > critical:
            findings.append((CRITICAL, f"{text} {value:.0f}{unit} > {critical}{unit} (critical)"))
        elif value > warning:
            findings.append((WARNING, f"{text} {value:.0f}{unit} > {warning}{unit} (warning)"))

    check(stats.waiting, thresholds.waiting_warning, thresholds.waiting_critical, "waiting jobs")
    check(stats.failed, thresholds.failed_warning, thresholds.failed_critical, "failed jobs")
    check(stats.oldest_waiting_age, thresholds.oldest_warning, thresholds.oldest_critical,
          "oldest waiting job age", "s")
    if stats.waiting > 0 and stats.workers == 0:
        findings.append((WARNING, f"no workers while {stats.waiting} jobs wait"))
    status = max((level for level, _ in findings), key=SEVERITY.__getitem__, default=OK)
    return status, [reason for _, reason in findings]


def queue_report(name: str, stats: QueueStats, thresholds: Thresholds) -> dict[str, Any]:
    status, reasons = evaluate(stats, thresholds)
    age = stats.oldest_waiting_age
    return {
        "waiting": stats.waiting,
        "active": stats.active,
        "failed": stats.failed,
        "healthy": status == OK,
        "scheduled": stats.scheduled,
        "deferred": stats.deferred,
        "finished": stats.finished,
        "workers": stats.workers,
        "oldestWaitingAgeSeconds": round(age, 1) if age is not None else None,
        "status": status,
        "reasons": reasons,
        "keepCompleted": policy(name).keep_completed,
        "keepFailed": policy(name).keep_failed,
    }


def queues_health(names: list[str] | None = None) -> dict[str, Any]:
    """Return the ``/health/queues`` report: the seed's totals plus each queue's details."""
    thresholds = Thresholds.from_settings()
    queues = {name: queue_report(name, stats, thresholds) for name, stats in collect(names).items()}
    overall = max((q["status"] for q in queues.values()), key=SEVERITY.__getitem__, default=OK)
    report = {
        "status": overall,
        "totalQueues": len(queues),
        "healthyQueues": sum(1 for q in queues.values() if q["healthy"]),
        "totalWaiting": sum(q["waiting"] for q in queues.values()),
        "totalActive": sum(q["active"] for q in queues.values()),
        "totalFailed": sum(q["failed"] for q in queues.values()),
        "checkedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "queues": queues,
    }
    if names is None:
        report["outbox"] = outbox = outbox_backlog()
        # Jobs stuck in the outbox are accepted work that no worker can see: they weigh on the
        # overall status like a queue does (the relay is down, or Redis refuses the pushes).
        report["status"] = max(overall, outbox["status"], key=lambda level: SEVERITY.get(level, 0))
    return report


def outbox_backlog() -> dict[str, Any]:
    """Jobs recorded in PostgreSQL that Redis has not taken yet (``broxiva.outbox``): one query.

    The relay drains the outbox every minute, so a row older than
    ``HEALTH_OUTBOX_WARNING_SECONDS`` (``…_CRITICAL_SECONDS``) makes the outbox warning (critical).
    """
    from broxiva.outbox import backlog

    try:
        waiting, oldest = backlog()
    except Exception as exc:  # the queues' report must not depend on the database
        logger.warning("outbox backlog unavailable: %s", type(exc).__name__)
        # "unknown" leaves the overall status to the queues (liveness reports the database).
        reason = f"outbox backlog unavailable ({type(exc).__name__}): is PostgreSQL reachable?"
        return {"error": type(exc).__name__, "status": UNKNOWN, "reasons": [reason]}
    age = round((datetime.now(UTC) - oldest).total_seconds(), 1) if oldest else None
    findings: list[tuple[str, str]] = []
    warning, critical = settings.HEALTH_OUTBOX_WARNING_SECONDS, settings.HEALTH_OUTBOX_CRITICAL_SECONDS
    text = f"{waiting} committed job(s) not yet in Redis, the oldest for {age or 0:.0f}s"
    if age is not None and age > critical:
        findings.append((CRITICAL, f"{text} > {critical}s (critical): is the outbox-relay entry running?"))
    elif age is not None and age > warning:
        findings.append((WARNING, f"{text} > {warning}s (warning): is the outbox-relay entry running?"))
    status = findings[0][0] if findings else OK
    return {"waiting": waiting, "oldestAgeSeconds": age, "status": status, "reasons": [r for _, r in findings]}


def queue_health(name: str) -> dict[str, Any]:
    """Return one queue's report; raise ``UnknownQueue`` for a name not in the §4 table."""
    policy(name)
    return queues_health([name])["queues"][name]


def redis_error_message(exc: BaseException) -> str:
    """Return one line saying Redis cannot be used, for operators: never a credential.

    redis-py's messages name the address ("Error 111 connecting to 10.0.0.5:6379. Connection
    refused."), which an operator needs; any password the settings hold is masked all the same
    (``redact``), in case a message or a URL ever carries one.
    """
    return redact(" ".join(f"Redis is unreachable: {type(exc).__name__}: {exc}".split()))[:500]


def redact(text: str) -> str:
    """Return ``text`` with every Redis password the settings hold (plain or URL-quoted) masked."""
    for secret in _redis_secrets():
        text = text.replace(secret, "***")
    return text


def _redis_secrets() -> list[str]:
    secrets = {settings.REDIS_PASSWORD, getattr(settings, "REDIS_SENTINEL_PASSWORD", "")}
    for url in (settings.REDIS_URL, settings.REDIS_QUEUE_URL):
        try:
            secrets.add(urlsplit(url).password or "")
        except ValueError:
            continue
    secrets |= {quote(secret, safe="") for secret in secrets}
    return sorted((s for s in secrets if s), key=len, reverse=True)  # longest first: no partial leftovers


def liveness() -> tuple[bool, dict[str, str]]:
    """Check that the database and both Redis databases answer (for load balancers)."""
    from django.db import connection as db

    from broxiva.connections import get_redis

    def database() -> None:
        with db.cursor() as cursor:
            cursor.execute("SELECT 1")

    checks: dict[str, str] = {}
    probes = {
        "database": database,
        "redis": lambda: get_redis().ping(),
        "queueRedis": lambda: connection().ping(),
    }
    for name, probe in probes.items():
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:  # report which dependency is down, never its address or credentials
            logger.warning("liveness check %s failed: %s", name, type(exc).__name__)
            checks[name] = f"error: {type(exc).__name__}"
    return all(value == "ok" for value in checks.values()), checks


WORKER_FIELDS = ("hostname", "pid", "state", "queues", "current_job", "last_heartbeat", "birth",
                 "successful_job_count", "failed_job_count")


def workers(*, now: datetime | None = None, client: Redis | None = None) -> list[dict[str, Any]]:
    """Return the workers registered on this deployment's queues, in two round trips, by host and pid.

    Each: name, hostname, pid, state (idle/busy/suspended…), current job id, the logical queues it
    listens to in its order, seconds since its last heartbeat, whether that is within
    ``HEALTH_WORKER_STALE_SECONDS`` (``alive``), and its finished/failed job counts.
    """
    client = client or connection()
    now = now or datetime.now(UTC)
    stale = Thresholds.from_settings().worker_stale
    ours = {rq_name(name): name for name in PRIORITY_ORDER}
    keys = sorted(_text(key) for key in client.smembers("rq:workers"))
    if not keys:
        return []
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hmget(key, WORKER_FIELDS)
        replies = pipe.execute()
    found = []
    for key, values in zip(keys, replies, strict=True):
        data = {field: (_text(value) if value is not None else None) for field, value in zip(WORKER_FIELDS, values,
                                                                                              strict=True)}
        if data["birth"] is None and data["last_heartbeat"] is None:
            continue  # its hash expired: a dead worker's leftover id
        queues = [ours[q] for q in (data["queues"] or "").split(",") if q in ours]
        if not queues:
            continue  # another deployment's worker (QUEUE_PREFIX) on the same Redis DB
        age = None
        if data["last_heartbeat"]:
            age = max(0.0, (now - utcparse(data["last_heartbeat"])).total_seconds())
        found.append({
            "name": key.removeprefix("rq:worker:"),
            "hostname": data["hostname"] or "?",
            "pid": int(data["pid"]) if (data["pid"] or "").isdigit() else None,
            "state": data["state"] or "?",
            "currentJob": data["current_job"] or None,
            "queues": queues,
            "heartbeatAgeSeconds": round(age, 1) if age is not None else None,
            "alive": age is not None and age <= stale,
            "finished": int(data["successful_job_count"] or 0),
            "failed": int(data["failed_job_count"] or 0),
        })
    return sorted(found, key=lambda w: (w["hostname"], w["pid"] or 0, w["name"]))
