"""One check of one domain (the job's work), and asking for one ("verify now").

``domain_verify`` looks (outside any transaction: DNS and HTTP take time), then records what it
saw on the locked row. A ``CheckUnavailable`` propagates untouched: the queue's policy retries
it, it is not a check and it never fails a domain. A check whose domain changed meanwhile (a new
token, another method) is thrown away rather than recorded against the wrong proof.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from broxiva.queues import enqueue, get_queue
from domains import checks
from domains.models import TenantDomain
from domains.services.lifecycle import (
    EXPIRED_REASON,
    JOB,
    MISSES_TO_FAIL,
    QUEUE,
    RECHECK_EVERY,
    REMOVED_REASON,
    Status,
    job_id_for,
    transition,
)

logger = logging.getLogger(__name__)

FIRST_BACKOFF = 60
MAX_BACKOFF = 3600


@dataclass
class Outcome:
    domain_id: int
    result: str  # verified, not_found, failed, skipped, missing, discarded
    status: str = ""
    summary: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def backoff(checks_done: int) -> timedelta:
    """Wait after the n-th check that found nothing: 1 min, 2, 4 … capped at 1 h."""
    return timedelta(seconds=min(FIRST_BACKOFF * 2 ** max(checks_done - 1, 0), MAX_BACKOFF))


def is_due(row: TenantDomain, now) -> bool:
    return row.verify_requested_at is not None or (
        row.status in (Status.PENDING, Status.VERIFIED) and row.next_check_at <= now)


def domain_verify(*, domain_id: int) -> Outcome:
    """Check a domain once if it is due (or "verify now" asked); record what was found."""
    row = TenantDomain.objects.filter(pk=domain_id).first()
    if row is None:
        return Outcome(domain_id, "missing")
    started = timezone.now()
    if not is_due(row, started):  # a second job for the same domain: the first one did the work
        return Outcome(domain_id, "skipped", row.status)
    finding = checks.run(row.method, row.domain, row.token)  # CheckUnavailable propagates: the queue retries it
    return record_finding(row, finding, started=started)


def record_finding(row: TenantDomain, finding: checks.Finding, *, started) -> Outcome:
    """Record what a check of ``row`` (as loaded before the check, at ``started``) found."""
    domain_id = row.pk
    proof = (row.domain, row.method, row.token)
    if not finding.found and _record_miss_fast(row, finding):
        return Outcome(domain_id, "not_found", Status.PENDING, finding.summary)
    with transaction.atomic():
        row = TenantDomain.objects.select_for_update().filter(pk=domain_id).first()
        if row is None:
            return Outcome(domain_id, "missing")
        if (row.domain, row.method, row.token) != proof:  # a new token or method while we looked
            return Outcome(domain_id, "discarded", row.status)
        now = timezone.now()
        row.last_checked_at = now
        row.last_check = {"method": row.method, "checked_at": now.isoformat(), **finding.as_dict()}
        if row.verify_requested_at is not None and row.verify_requested_at <= started:
            row.verify_requested_at = None
        outcome = _record(row, finding, now)
    logger.info("domain check id=%s result=%s status=%s", domain_id, outcome.result, outcome.status)
    return outcome


def _record_miss_fast(row: TenantDomain, finding: checks.Finding) -> bool:
    """Record the common case — a pending domain, not expired, still not there — in one UPDATE.

    Conditional on everything the check and the backoff were based on (proof, status, count, no
    "verify now" pending): if any changed meanwhile nothing is written and the locked path runs.
    """
    now = timezone.now()
    if row.status != Status.PENDING or row.verify_requested_at is not None or \
            row.created_at + timedelta(days=settings.DOMAIN_VERIFICATION_EXPIRY_DAYS) <= now:
        return False
    done = TenantDomain.objects.filter(
        pk=row.pk, domain=row.domain, method=row.method, token=row.token, status=Status.PENDING, checks=row.checks,
        verify_requested_at__isnull=True,
    ).update(checks=row.checks + 1, next_check_at=now + backoff(row.checks + 1), last_checked_at=now,
             last_check={"method": row.method, "checked_at": now.isoformat(), **finding.as_dict()}, updated_at=now)
    if done:
        logger.info("domain check id=%s result=not_found status=pending", row.pk)
    return bool(done)


def _record(row: TenantDomain, finding: checks.Finding, now) -> Outcome:
    if finding.found:
        if row.status == Status.VERIFIED:
            row.consecutive_misses = 0
            row.next_check_at = now + RECHECK_EVERY
            row.save()
        else:
            transition(row, Status.VERIFIED, reason=finding.summary, now=now)
        return Outcome(row.pk, "verified", row.status, finding.summary)
    row.checks += 1
    if row.status == Status.PENDING:
        days = settings.DOMAIN_VERIFICATION_EXPIRY_DAYS
        if row.created_at + timedelta(days=days) <= now:
            transition(row, Status.FAILED, reason=EXPIRED_REASON.format(days=days), now=now)
            return Outcome(row.pk, "failed", row.status, finding.summary)
        row.next_check_at = now + backoff(row.checks)
    elif row.status == Status.VERIFIED:
        row.consecutive_misses += 1
        if row.consecutive_misses >= MISSES_TO_FAIL:
            transition(row, Status.FAILED, reason=REMOVED_REASON, now=now)
            return Outcome(row.pk, "failed", row.status, finding.summary)
        row.next_check_at = now + RECHECK_EVERY
    row.save()
    return Outcome(row.pk, "not_found", row.status, finding.summary)


def request_check(domain_id: int, *, at_front: bool) -> str:
    """Make sure the domain's one job is waiting; with ``at_front``, ahead of the queue.

    Return what was done: ``moved`` (its waiting job went to the front), ``running`` (a check is
    under way), ``waiting`` (left where it was), ``enqueued``.
    """
    queue = get_queue(QUEUE)
    job_id = job_id_for(domain_id)
    job = Job.fetch_many([job_id], connection=queue.connection)[0]
    status = job.get_status(refresh=False) if job is not None else None
    if status == JobStatus.STARTED:
        return "running"
    if status == JobStatus.QUEUED and job.origin == queue.name:
        if not at_front:
            return "waiting"
        with queue.connection.pipeline() as pipe:  # MULTI: never out of the list, never twice in it
            pipe.lrem(queue.key, 0, job_id)
            pipe.lpush(queue.key, job_id)
            pipe.execute()
        return "moved"
    if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED) and job.origin == queue.name:
        if not at_front:
            return "waiting"
        ScheduledJobRegistry(queue=queue).remove(job)  # a retry waiting out its backoff: now instead
        queue.enqueue_job(job, at_front=True)
        return "moved"
    enqueue(QUEUE, JOB, domain_id=domain_id, job_id=job_id, at_front=at_front)
    return "enqueued"


def verify_now(domain_id: int) -> str:
    """Check the domain as soon as a worker is free, ahead of the queue ("verify now").

    The request is recorded on the row first, so it survives Redis trouble: the next sweep
    enqueues any domain with a request still open. Raise ``TenantDomain.DoesNotExist``.
    """
    if not TenantDomain.objects.filter(pk=domain_id).update(verify_requested_at=timezone.now()):
        raise TenantDomain.DoesNotExist(f"no domain with id {domain_id}")
    try:
        done = request_check(domain_id, at_front=True)
    except RedisError as exc:
        logger.warning("verify now id=%s: Redis unavailable (%s); the sweep will enqueue it", domain_id,
                       exc.__class__.__name__)
        return "recorded"
    logger.info("verify now id=%s: %s", domain_id, done)
    return done


def due_filter(now) -> Q:
    return Q(verify_requested_at__isnull=False) | Q(
        status__in=(Status.PENDING, Status.VERIFIED), next_check_at__lte=now)
