"""The at-most-once bookkeeping shared by e-mails and push deliveries (``SendStatus``).

Every transition is one conditional UPDATE on the row, so two workers holding the same job
(a duplicate push by the outbox relay, a retry racing a slow first run) can never both send:
only the one whose ``queued → sending`` UPDATE matched a row talks to the server.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import models
from django.db.models import F
from django.utils import timezone

from notifications.models import SendStatus

logger = logging.getLogger(__name__)

# What the stale-send sweep writes on a row a dead worker left ``sending``.
OUTCOME_UNKNOWN = "outcome unknown: the worker stopped during {what}; not sent again (at most once)"
MAX_ERROR = 2000


def claim(model: type[models.Model], pk: int) -> bool:
    """Move the row ``queued → sending`` (one attempt more); return False if it was not queued."""
    now = timezone.now()
    return bool(model.objects.filter(pk=pk, status=SendStatus.QUEUED).update(
        status=SendStatus.SENDING, attempts=F("attempts") + 1, claimed_at=now, updated_at=now,
    ))


def mark_sent(model: type[models.Model], pk: int, *, note: str = "") -> bool:
    now = timezone.now()
    return bool(model.objects.filter(pk=pk, status=SendStatus.SENDING).update(
        status=SendStatus.SENT, sent_at=now, last_error=note[:MAX_ERROR], updated_at=now,
    ))


def release(model: type[models.Model], pk: int, *, error: str) -> bool:
    """Put a claimed row back to ``queued`` (a transient failure with attempts left, or a deferral)."""
    return bool(model.objects.filter(pk=pk, status=SendStatus.SENDING).update(
        status=SendStatus.QUEUED, last_error=error[:MAX_ERROR], updated_at=timezone.now(),
    ))


def mark_failed(model: type[models.Model], pk: int, *, error: str) -> bool:
    return bool(model.objects.filter(pk=pk, status=SendStatus.SENDING).update(
        status=SendStatus.FAILED, last_error=error[:MAX_ERROR], updated_at=timezone.now(),
    ))


def fail_stale(model: type[models.Model], *, older_than: timedelta, what: str) -> int:
    """Fail rows left ``sending`` longer than ``older_than``: their worker died mid-send.

    Such a row may or may not have reached the server; at most once forbids sending it again,
    so it is failed with "outcome unknown" for an operator to see, never re-queued.
    """
    cutoff = timezone.now() - older_than
    count = model.objects.filter(status=SendStatus.SENDING, claimed_at__lt=cutoff).update(
        status=SendStatus.FAILED, last_error=OUTCOME_UNKNOWN.format(what=what), updated_at=timezone.now(),
    )
    if count:
        logger.warning("%d %s row(s) left sending by a dead worker marked failed (outcome unknown)",
                       count, model._meta.verbose_name)
    return count
