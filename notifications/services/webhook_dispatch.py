"""Delivering webhooks many at a time: claim due rows, send them concurrently, record in bulk.

Why this shape (docs/webhooks.md, bench/bench_notifications.py): a webhook send waits ~100 ms on
the network, so one RQ job per delivery caps a worker process at ~9/s and RQ's own per-job
bookkeeping (~50 Redis commands) caps it near a few hundred per second even in threads. Here a
*dispatch job* claims due deliveries from PostgreSQL and keeps ``WEBHOOK_CONCURRENCY`` sends in
flight in a thread pool. Each delivery keeps its own row, attempt rows, signature, timeout and
retry schedule (``next_attempt_at`` from the queue policy's delays), so a batch never hides an
individual failure.

- **At most once.** A row is claimed by a conditional UPDATE (``pending`` → ``sending``, rows
  taken with ``FOR UPDATE SKIP LOCKED``) before its send; only the claimer records its outcome.
  A duplicate or retried dispatch job finds nothing to claim for a delivered row.
- **Nothing lost.** The delivery row is its own outbox: a dispatcher that dies leaves rows in
  ``sending``; once their lease (``lease_seconds()``) has run out the next dispatch puts them
  back (one attempt spent, recorded as interrupted). The ``webhook-dispatch`` periodic entry
  runs a dispatch every minute whatever happened to the kicks.
- **One database connection per dispatch job.** Threads only sign and POST; the job's own
  thread claims and records, so a worker holds one PostgreSQL connection however many sends
  are in flight.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from broxiva.queues import policy
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications.providers import webhooks as wire

logger = logging.getLogger(__name__)

QUEUE = "webhook-delivery"
DISPATCH_JOB = "notifications.jobs.webhooks.webhook_dispatch_job"
Status = WebhookDelivery.Status


def lease_seconds() -> float:
    """How long a claim may stay ``sending`` before it counts as abandoned.

    A row is claimed only when a thread is free to send it, so its send starts at once and ends
    within ``WEBHOOK_TIMEOUT``; the minute on top covers recording and a slow database.
    """
    return settings.WEBHOOK_TIMEOUT + 60


def retry_delays() -> list[int]:
    """The waits before retries 1, 2, … (the ``webhook-delivery`` queue's policy, overrides applied)."""
    return policy(QUEUE).retry_delays()


@dataclass
class DispatchResult:
    claimed: int = 0
    succeeded: int = 0
    retrying: int = 0
    deferred: int = 0
    failed: int = 0
    recovered: int = 0
    budget_spent: bool = False  # stopped claiming at its time budget (work may be left)
    endpoints_disabled: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items()}


# --- Claiming ----------------------------------------------------------------------------------


def claim(*, limit: int, now: datetime | None = None) -> list[WebhookDelivery]:
    """Claim up to ``limit`` due pending deliveries (oldest due first) and return them loaded.

    ``SKIP LOCKED`` lets several dispatchers claim side by side without waiting on each other;
    the UPDATE's ``status='pending'`` condition is what makes a claim exclusive.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return []
        WebhookDelivery.objects.filter(id__in=ids, status=Status.PENDING).update(
            status=Status.SENDING, claimed_at=now, updated_at=now
        )
    return list(
        WebhookDelivery.objects.filter(id__in=ids, status=Status.SENDING, claimed_at=now).select_related(
            "message", "endpoint"
        )
    )


def recover_abandoned(*, now: datetime | None = None) -> int:
    """Put deliveries whose claim outlived its lease back to ``pending``; return how many.

    The dispatcher that claimed them died (or was killed at its timeout) between claim and
    record: the receiver may or may not have got the request, so it counts as a spent attempt,
    and the delivery is retried now (receivers de-duplicate on ``webhook-id``).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=lease_seconds())
    with transaction.atomic():
        rows = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True).filter(
                status=Status.SENDING, claimed_at__lt=cutoff
            )
        )
        if not rows:
            return 0
        max_attempts = policy(QUEUE).attempts
        attempts = []
        for row in rows:
            row.attempts += 1
            error = "interrupted: the dispatcher stopped before recording the answer"
            attempts.append(WebhookAttempt(delivery=row, number=row.attempts, error=error, created_at=now))
            row.last_error = error
            row.claimed_at = None
            row.updated_at = now
            if row.attempts >= max_attempts:
                row.status = Status.FAILED
            else:
                row.status, row.next_attempt_at = Status.PENDING, now
        WebhookAttempt.objects.bulk_create(attempts)
        WebhookDelivery.objects.bulk_update(
            rows, ["attempts", "status", "next_attempt_at", "last_error", "claimed_at", "updated_at"]
        )
    logger.warning("webhook deliveries recovered from a dead dispatcher count=%d", len(rows))
    return len(rows)


# --- Sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What a thread needs to send one delivery: plain values, no model (threads never touch the ORM)."""

    delivery_id: int
    url: str
    msg_id: str
    body: bytes
    secrets: list[str]


def _prepare(row: WebhookDelivery, now: datetime) -> Job:
    return Job(
        delivery_id=row.id,
        url=row.endpoint.url,
        msg_id=row.message_id,
        body=wire.serialise(row.message.payload),
        secrets=row.endpoint.signing_secrets(now),
    )


def _send(job: Job) -> wire.Outcome:
    try:
        return wire.send(url=job.url, msg_id=job.msg_id, body=job.body, secrets=job.secrets)
    except Exception as exc:  # a bug must fail one delivery, not the batch
        logger.exception("webhook send crashed delivery=%s", job.delivery_id)
        return wire.Outcome("failed", error=f"internal error: {exc.__class__.__name__}")


# --- Recording ---------------------------------------------------------------------------------


def record(results: list[tuple[WebhookDelivery, wire.Outcome]], *, totals: DispatchResult) -> list[datetime]:
    """Store the attempt rows and each delivery's new state in bulk; return the retry times set.

    Only rows still claimed by this dispatcher (``sending``, same ``claimed_at``) are written, so
    a claim recovered by another process after its lease is not overwritten.
    """
    if not results:
        return []
    now = timezone.now()
    delays = retry_delays()
    max_attempts = len(delays) + 1
    by_id = {row.id: (row, outcome) for row, outcome in results}
    attempts: list[WebhookAttempt] = []
    retries: list[datetime] = []
    gone: dict[int, str] = {}
    with transaction.atomic():
        mine = {
            d.id: d.claimed_at
            for d in WebhookDelivery.objects.select_for_update()
            .filter(id__in=list(by_id), status=Status.SENDING)
            .only("id", "claimed_at")
        }
        rows = []
        for delivery_id, (row, outcome) in by_id.items():
            if mine.get(delivery_id) != row.claimed_at:
                logger.warning("webhook delivery %s lost its claim before recording", delivery_id)
                continue
            _apply(row, outcome, now=now, delays=delays, max_attempts=max_attempts, totals=totals)
            attempts.append(
                WebhookAttempt(
                    delivery=row,
                    number=row.attempts if outcome.kind != "deferred" else row.attempts + 1,
                    succeeded=outcome.kind == "succeeded",
                    deferred=outcome.kind == "deferred",
                    status_code=outcome.status_code,
                    duration_ms=outcome.duration_ms,
                    response_excerpt=outcome.excerpt,
                    error=outcome.error,
                    created_at=now,
                )
            )
            if outcome.kind == "gone":
                gone[row.endpoint_id] = f"{outcome.error} (delivery {row.id}, {now:%Y-%m-%d %H:%M} UTC)"
            if row.status == Status.PENDING:
                retries.append(row.next_attempt_at)
            rows.append(row)
        WebhookAttempt.objects.bulk_create(attempts)
        _write(rows)
        for endpoint_id, reason in gone.items():
            if WebhookEndpoint.objects.filter(id=endpoint_id, is_active=True).update(
                is_active=False, disabled_reason=reason, disabled_at=now, updated_at=now
            ):
                totals.endpoints_disabled.append(endpoint_id)
                logger.warning("webhook endpoint disabled endpoint=%s reason=410", endpoint_id)
    return retries


_FIELDS = ("status", "attempts", "deferrals", "next_attempt_at", "last_status_code", "last_error", "delivered_at")
_CASTS = ("varchar", "integer", "integer", "timestamptz", "integer", "text", "timestamptz")


def _write(rows: list[WebhookDelivery]) -> None:
    """Write the recorded state of ``rows`` (claim released) in one statement.

    Django's ``bulk_update`` builds a ``CASE WHEN`` per row and field in Python: measured at more
    than half the dispatcher's CPU at a few hundred deliveries a second (bench_notifications).
    PostgreSQL gets one ``UPDATE … FROM (VALUES …)``; other databases (the embedded SQLite) the
    ORM's bulk_update.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        WebhookDelivery.objects.bulk_update(rows, [*_FIELDS, "claimed_at", "updated_at"])
        return
    table = WebhookDelivery._meta.db_table
    row_sql = "(%s::bigint, " + ", ".join(f"%s::{cast}" for cast in _CASTS) + ")"
    params: list[object] = []
    for row in rows:
        params.append(row.id)
        params.extend(getattr(row, name) for name in _FIELDS)
    assignments = ", ".join(f"{name} = v.{name}" for name in _FIELDS)
    sql = (
        f"UPDATE {table} AS d SET {assignments}, claimed_at = NULL, updated_at = %s "  # noqa: S608 -- names are ours
        f"FROM (VALUES {', '.join([row_sql] * len(rows))}) AS v(id, {', '.join(_FIELDS)}) WHERE d.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [rows[0].updated_at, *params])


def _apply(
    row: WebhookDelivery,
    outcome: wire.Outcome,
    *,
    now: datetime,
    delays: list[int],
    max_attempts: int,
    totals: DispatchResult,
) -> None:
    row.claimed_at = None
    row.updated_at = now
    row.last_status_code = outcome.status_code
    if outcome.kind == "deferred":
        row.deferrals += 1
        if row.deferrals <= settings.WEBHOOK_MAX_DEFERRALS:
            row.status = Status.PENDING
            row.next_attempt_at = now + timedelta(seconds=outcome.retry_after or 0)
            row.last_error = outcome.error
            totals.deferred += 1
            return
        outcome = wire.Outcome(
            "failed",
            status_code=outcome.status_code,
            error=f"{outcome.error}; deferred {row.deferrals - 1} times, giving up",
            transient=False,
        )
    if outcome.kind != "deferred":
        row.attempts += 1
    if outcome.kind == "succeeded":
        row.status, row.delivered_at, row.last_error = Status.SUCCEEDED, now, ""
        totals.succeeded += 1
    elif not outcome.transient or row.attempts >= max_attempts:
        row.status = Status.FAILED
        row.last_error = outcome.error if outcome.transient is False else f"{outcome.error} (attempts exhausted)"
        totals.failed += 1
    else:
        row.status = Status.PENDING
        row.next_attempt_at = now + timedelta(seconds=delays[row.attempts - 1])
        row.last_error = outcome.error
        totals.retrying += 1


def _fail_inactive(rows: list[WebhookDelivery], totals: DispatchResult) -> list[WebhookDelivery]:
    """Fail (without a try) claimed deliveries whose endpoint was disabled since; return the others."""
    inactive = [row for row in rows if not row.endpoint.is_active]
    if inactive:
        now = timezone.now()
        for row in inactive:
            reason = row.endpoint.disabled_reason or "disabled"
            row.status, row.claimed_at, row.updated_at = Status.FAILED, None, now
            row.last_error = f"endpoint disabled: {reason}"[:1000]
        WebhookDelivery.objects.bulk_update(inactive, ["status", "claimed_at", "updated_at", "last_error"])
        totals.failed += len(inactive)
    return [row for row in rows if row.endpoint.is_active]


# --- The loop ----------------------------------------------------------------------------------


def dispatch(
    *,
    budget_seconds: float | None = None,
    concurrency: int | None = None,
    on_retry: Callable[[list[datetime]], None] | None = None,
) -> DispatchResult:
    """Deliver due webhooks until none is due or ``budget_seconds`` is spent; return the counts.

    Keeps up to ``concurrency`` sends in flight, claiming more as threads free up, and records
    outcomes in bulk every few hundred milliseconds. ``on_retry`` receives the retry times that
    were set, so the caller can schedule a dispatch for them.
    """
    concurrency = concurrency or settings.WEBHOOK_CONCURRENCY
    if budget_seconds is None:
        # Stop claiming in time for the last sends (each ≤ WEBHOOK_TIMEOUT) to end before the
        # queue's job timeout kills the job.
        budget_seconds = max(1.0, policy(QUEUE).timeout - settings.WEBHOOK_TIMEOUT - 10)
    totals = DispatchResult()
    totals.recovered = recover_abandoned()
    stop_at = time.monotonic() + budget_seconds
    inflight: dict[Future[wire.Outcome], WebhookDelivery] = {}
    done: list[tuple[WebhookDelivery, wire.Outcome]] = []
    flushed = time.monotonic()
    drained = False  # the last claim found nothing
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook") as pool:
        while True:
            free = concurrency - len(inflight)
            if time.monotonic() >= stop_at:
                totals.budget_spent = True
            claiming = not totals.budget_spent and free >= max(1, concurrency // 4)
            if claiming and (not drained or not inflight):
                now = timezone.now()
                rows = claim(limit=min(free, settings.WEBHOOK_BATCH_SIZE), now=now)
                totals.claimed += len(rows)
                rows = _fail_inactive(rows, totals)
                for row in rows:
                    inflight[pool.submit(_send, _prepare(row, now))] = row
                drained = not rows
                if drained and not inflight and not done:
                    break
            elif not inflight and not done:
                break
            if inflight:
                finished, _ = wait(list(inflight), timeout=0.05, return_when=FIRST_COMPLETED)
                for future in finished:
                    done.append((inflight.pop(future), future.result()))
            if done and (not inflight or len(done) >= concurrency // 2 or time.monotonic() - flushed > 0.25):
                retries = record(done, totals=totals)
                if retries and on_retry:
                    on_retry(retries)
                done = []
                flushed = time.monotonic()
                drained = drained and bool(inflight)  # new retries may be due: look again once idle
    logger.info(
        "webhook dispatch claimed=%d succeeded=%d retrying=%d deferred=%d failed=%d recovered=%d",
        totals.claimed,
        totals.succeeded,
        totals.retrying,
        totals.deferred,
        totals.failed,
        totals.recovered,
    )
    return totals


def retry_kick_times(times: list[datetime]) -> list[datetime]:
    """Return the distinct whole seconds (rounded up) at which a dispatch should run for ``times``."""
    seconds = sorted({math.ceil(t.timestamp()) for t in times})
    return [datetime.fromtimestamp(s, tz=UTC) for s in seconds]
