"""The transactional outbox (DESIGN.md §3): a job decided inside a transaction is never lost.

``broxiva.queues.enqueue()`` / ``enqueue_many()`` called inside ``transaction.atomic()`` do not
talk to Redis. ``record()`` writes one ``OutboxJob`` row per job in the caller's transaction and
registers a commit hook that pushes those rows to Redis and deletes them:

- the transaction rolls back: no row, no hook, no job;
- it commits and Redis takes the jobs: the rows are deleted, nothing is left behind;
- it commits and Redis fails (down, failing over, timing out): the hook logs the error, records
  it on the rows (``attempts``, ``last_error``) and returns. No exception escapes after the
  commit: the caller's work did commit, and its jobs wait in PostgreSQL for the relay.

``relay()`` (the ``outbox-relay`` periodic entry, every minute, and ``manage.py outbox_relay``)
pushes whatever the hooks could not. Its guarantees:

- **Nothing is lost.** A row is deleted only in the transaction that pushed it, after Redis
  accepted the push; a push that fails leaves its rows (and those not yet tried) for the next
  relay. While Redis is down nothing can fire the relay; the rows wait, and the first relay
  after Redis returns pushes them all (it loops over batches until none are left, up to
  ``OUTBOX_RELAY_LIMIT`` rows a run).
- **No two relays push the same row at once**, nor a relay and a hook: each takes its rows with
  ``SELECT … FOR UPDATE SKIP LOCKED`` and holds the locks until its deletions commit, so two
  relays on two machines split the waiting rows between them.
- **Replicated before deleted** (``OUTBOX_WAIT_REPLICAS`` > 0): Redis replicates
  asynchronously, so a master that took a push and died before passing it on loses it. With the
  setting, a batch's rows are deleted only after ``WAIT`` says that many replicas have it
  (``_confirm_replicated``); otherwise they stay, with the error, and the relay re-pushes or
  confirms them later.
- **At least once, not exactly once.** A process that pushed and then died before its deletion
  committed leaves rows for the next relay. The relay only takes rows older than
  ``OUTBOX_RELAY_GRACE_SECONDS`` (the hook normally finishes within milliseconds of the commit)
  and skips a row whose job already exists in Redis (same job id: it was pushed, so the row is
  just deleted). A job that already ran *and* was trimmed from Redis can still run a second
  time, so jobs guard their at-most-once effects with database constraints or conditional
  updates, as DESIGN.md §3 says for every job.

Every outbox job has a stable job id (the caller's, or a new uuid4 hex), returned by
``enqueue()``, so a caller can record it and a re-push is recognisable.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Min
from django.utils import timezone
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job

from broxiva.health import redact
from broxiva.models import OutboxJob

logger = logging.getLogger(__name__)

# Rows per SELECT and per Redis pipeline (the hook pushes its own rows in batches of this size too).
BATCH_SIZE = 500
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")


@dataclass(frozen=True)
class Pending:
    """One job to record: what ``enqueue()`` validated, and the job id it will be pushed with."""

    queue: str
    func: str
    args: Sequence[Any]
    kwargs: dict[str, Any]
    job_id: str
    at_front: bool = False


@dataclass
class RelayReport:
    """What a push did: rows pushed, rows found already in Redis, rows that failed (and why)."""

    pushed: int = 0
    already_in_redis: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    redis_failed: bool = False  # Redis refused or dropped a push: stop until the next run

    def add(self, other: RelayReport) -> None:
        self.pushed += other.pushed
        self.already_in_redis += other.already_in_redis
        self.failed += other.failed
        self.errors.extend(e for e in other.errors if e not in self.errors)
        self.redis_failed = self.redis_failed or other.redis_failed

    def as_dict(self) -> dict[str, Any]:
        return {"pushed": self.pushed, "already_in_redis": self.already_in_redis, "failed": self.failed,
                "errors": self.errors}


def new_job_id() -> str:
    return uuid.uuid4().hex


def record(jobs: Sequence[Pending]) -> list[str]:
    """Write ``jobs`` in the current transaction and push them when it commits; return their ids.

    Call inside ``transaction.atomic()`` (``enqueue()`` does): one INSERT for the batch, one
    commit hook for it.
    """
    rows = [
        OutboxJob(job_id=job.job_id, queue=job.queue, func=job.func, args=list(job.args), kwargs=job.kwargs,
                  at_front=job.at_front)
        for job in jobs
    ]
    if not rows:
        return []
    OutboxJob.objects.bulk_create(rows)  # one INSERT; PostgreSQL returns the new ids
    transaction.on_commit(functools.partial(_push_after_commit, [row.pk for row in rows]))
    return [row.job_id for row in rows]


def _push_after_commit(pks: list[int]) -> None:
    # Runs after the caller's commit: never raise (the caller's work is done and must not look
    # failed); whatever is not pushed stays in the table for the relay.
    try:
        with transaction.atomic():
            rows = list(OutboxJob.objects.select_for_update(skip_locked=True).filter(pk__in=pks).order_by("pk"))
            report = push(rows, check_existing=False)
    except Exception:
        logger.exception("outbox commit hook failed for %d job(s); the relay will push them", len(pks))
        return
    if report.failed:
        logger.warning(
            "outbox commit hook could not push %d job(s), the relay will: %s", report.failed, "; ".join(report.errors)
        )


def push(rows: Sequence[OutboxJob], *, check_existing: bool) -> RelayReport:
    """Push locked ``rows`` to Redis, delete those Redis took, record the error on the others.

    Call inside the transaction that locked the rows. With ``check_existing``, a row whose job
    id already exists in Redis is not pushed again, only deleted.
    """
    from broxiva.queues import EnqueueError, get_queue, job_options

    report = RelayReport()
    done: list[int] = []
    failed: dict[str, list[int]] = {}
    redis_down: str | None = None  # the error of the first failed push: later rows are not tried
    for queue_name, group in _by_queue(rows).items():
        if redis_down is not None:
            failed.setdefault(redis_down, []).extend(row.pk for row in group)
            continue
        try:
            queue = get_queue(queue_name)
            options = job_options(queue_name)
        except EnqueueError as exc:  # a queue removed from the configuration: an operator must look
            failed.setdefault(_describe(exc), []).extend(row.pk for row in group)
            continue
        for start in range(0, len(group), BATCH_SIZE):
            batch = group[start : start + BATCH_SIZE]
            try:
                exists = _existing(queue, batch) if check_existing else [False] * len(batch)
                todo = [row for row, known in zip(batch, exists, strict=True) if not known]
                with queue.connection.pipeline() as pipe:
                    queue.enqueue_many(
                        [
                            Queue.prepare_data(row.func, args=tuple(row.args), kwargs=row.kwargs, job_id=row.job_id,
                                               at_front=row.at_front, **options)
                            for row in todo
                        ],
                        pipeline=pipe,
                    )
                    pipe.execute()
                if settings.OUTBOX_WAIT_REPLICAS:
                    _confirm_replicated(queue, batch)
            except RedisError as exc:
                # Redis is down or failing: stop here, keep this batch and every later row.
                redis_down = _describe(exc)
                failed.setdefault(redis_down, []).extend(row.pk for row in group[start:])
                break
            done.extend(row.pk for row in batch)
            report.pushed += len(todo)
            report.already_in_redis += len(batch) - len(todo)
    report.redis_failed = redis_down is not None
    if done:
        OutboxJob.objects.filter(pk__in=done).delete()
    now = timezone.now()
    for error, pks in failed.items():
        OutboxJob.objects.filter(pk__in=pks).update(attempts=F("attempts") + 1, last_attempt_at=now, last_error=error)
        report.failed += len(pks)
        report.errors.append(error)
    return report


def relay(*, limit: int | None = None, grace_seconds: int | None = None) -> RelayReport:
    """Push the outbox rows older than the grace period, in batches, until none are left.

    Stop after ``limit`` rows (default ``OUTBOX_RELAY_LIMIT``) or at the first Redis error (the
    next relay tries again). Safe to run on many machines at once (see the module docstring).
    """
    limit = settings.OUTBOX_RELAY_LIMIT if limit is None else limit
    grace = settings.OUTBOX_RELAY_GRACE_SECONDS if grace_seconds is None else grace_seconds
    report = RelayReport()
    taken = last_pk = 0
    while taken < limit:
        size = min(BATCH_SIZE, limit - taken)
        with transaction.atomic():
            cutoff = timezone.now() - timedelta(seconds=grace)
            rows = list(
                OutboxJob.objects.select_for_update(skip_locked=True)
                .filter(created_at__lte=cutoff, pk__gt=last_pk)
                .order_by("pk")[:size]
            )
            if not rows:
                break
            batch = push(rows, check_existing=True)
        report.add(batch)
        taken += len(rows)
        last_pk = rows[-1].pk
        if batch.redis_failed or len(rows) < size:
            break
    if report.pushed or report.already_in_redis or report.failed:
        logger.info("outbox relay pushed=%d already_in_redis=%d failed=%d",
                    report.pushed, report.already_in_redis, report.failed)
    return report


def backlog() -> tuple[int, datetime | None]:
    """Return how many jobs wait in the outbox and when the oldest was recorded (one query)."""
    result = OutboxJob.objects.aggregate(waiting=Count("id"), oldest=Min("created_at"))
    return result["waiting"], result["oldest"]


class NotReplicated(RedisError):
    """Fewer replicas than ``OUTBOX_WAIT_REPLICAS`` acknowledged a push: its rows are kept."""


# A key written just before WAIT, on the same connection: WAIT waits for the connection's own last
# write, so this write (later than the push, on the same master) makes it cover the push too.
REPLICATION_MARK = "broxiva:outbox:replication-mark"


def _confirm_replicated(queue: Queue, rows: Sequence[OutboxJob]) -> None:
    """Raise ``NotReplicated`` unless ``rows``' jobs are on the master and on enough replicas.

    One pipeline on one connection: the jobs exist (so this connection reached the master that
    took the push, not a newly promoted one that never saw it), a write, then ``WAIT``.
    """
    wanted, timeout = settings.OUTBOX_WAIT_REPLICAS, settings.OUTBOX_WAIT_TIMEOUT_MS
    with queue.connection.pipeline(transaction=False) as pipe:
        for row in rows:
            pipe.exists(Job.key_for(row.job_id))
        pipe.set(REPLICATION_MARK, rows[-1].job_id, ex=60)
        pipe.wait(wanted, timeout)
        *exists, _, acknowledged = pipe.execute()
    missing = len(rows) - sum(1 for n in exists if n)
    if missing:
        raise NotReplicated(f"{missing} pushed job(s) missing from the master right after the push")
    if acknowledged < wanted:
        raise NotReplicated(
            f"replication not confirmed: {acknowledged} of {wanted} replica(s) acknowledged within {timeout} ms"
        )


def _by_queue(rows: Iterable[OutboxJob]) -> dict[str, list[OutboxJob]]:
    groups: dict[str, list[OutboxJob]] = {}
    for row in rows:
        groups.setdefault(row.queue, []).append(row)
    return groups


def _existing(queue: Queue, rows: Sequence[OutboxJob]) -> list[bool]:
    with queue.connection.pipeline(transaction=False) as pipe:
        for row in rows:
            pipe.exists(Job.key_for(row.job_id))
        return [bool(n) for n in pipe.execute()]


def _describe(exc: BaseException) -> str:
    # Shown in the admin and the logs: never a Redis password, nor any URL's credentials.
    return _URL_CREDENTIALS.sub("***@", redact(f"{type(exc).__name__}: {exc}"))[:1000]
