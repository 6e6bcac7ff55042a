"""The periodic sweep: fail what expired, then fan out one check per due domain.

Due: pending or verified with ``next_check_at`` passed (a verified domain is due daily), or with
a "verify now" request still open. Each gets one job with the fixed id ``domain-verify-<id>``,
pushed with ``enqueue_many`` in pipelined batches; a domain whose job is still waiting, running
or waiting out a retry is skipped, so a domain never has two checks waiting. The rows are the
work list: a sweep that could not reach Redis loses nothing, the next one finds the same rows.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rq.job import Job

from broxiva.policies import LIVE_STATUSES
from broxiva.queues import enqueue_many, get_queue
from domains.models import TenantDomain
from domains.services.lifecycle import EXPIRED_REASON, JOB, QUEUE, Status, job_id_for, transition
from domains.services.verify import due_filter

logger = logging.getLogger(__name__)

BATCH = 500


@dataclass
class SweepReport:
    expired: int = 0
    due: int = 0
    enqueued: int = 0
    already_waiting: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def expire_pending(now=None) -> int:
    """Fail every domain still pending ``DOMAIN_VERIFICATION_EXPIRY_DAYS`` after it was added."""
    now = now or timezone.now()
    days = settings.DOMAIN_VERIFICATION_EXPIRY_DAYS
    cutoff = now - timedelta(days=days)
    failed = 0
    while True:
        with transaction.atomic():
            # SKIP LOCKED: a row a check is recording right now is left to that check.
            rows = list(TenantDomain.objects.select_for_update(skip_locked=True)
                        .filter(status=Status.PENDING, created_at__lte=cutoff).order_by("pk")[:BATCH])
            for row in rows:
                transition(row, Status.FAILED, reason=EXPIRED_REASON.format(days=days), now=now)
        failed += len(rows)
        if len(rows) < BATCH:
            return failed


def _live(ids: list[int]) -> set[int]:
    """Return the ids whose job is waiting, running, or waiting for a retry (one pipeline)."""
    connection = get_queue(QUEUE).connection
    with connection.pipeline(transaction=False) as pipe:
        for domain_id in ids:
            pipe.hget(Job.key_for(job_id_for(domain_id)), "status")
        statuses = pipe.execute()
    live = {s.encode() for s in LIVE_STATUSES}
    return {domain_id for domain_id, status in zip(ids, statuses, strict=True) if status in live}


def domains_sweep() -> SweepReport:
    report = SweepReport(expired=expire_pending())
    now = timezone.now()
    ids = TenantDomain.objects.filter(due_filter(now)).order_by("next_check_at", "pk").values_list("pk", flat=True)
    batch: list[int] = []
    for domain_id in ids.iterator(chunk_size=2000):
        batch.append(domain_id)
        if len(batch) >= BATCH:
            _fan_out(batch, report)
            batch = []
    if batch:
        _fan_out(batch, report)
    logger.info("domains sweep expired=%d due=%d enqueued=%d already_waiting=%d", report.expired, report.due,
                report.enqueued, report.already_waiting)
    return report


def _fan_out(ids: list[int], report: SweepReport) -> None:
    report.due += len(ids)
    live = _live(ids)
    todo = [i for i in ids if i not in live]
    report.already_waiting += len(live)
    if todo:
        enqueue_many(QUEUE, JOB, [{"domain_id": i} for i in todo], job_ids=[job_id_for(i) for i in todo])
        report.enqueued += len(todo)
