"""Jobs the worker benchmark runs (importable by dotted path, as every job must be)."""

from __future__ import annotations

import time


def noop() -> None:
    return None


def wait(seconds: float) -> None:
    time.sleep(seconds)


def webhook_deliver_one(delivery_id: int) -> None:
    """bench_notifications' baseline: one delivery per RQ job, the same claim, send and record."""
    from django.utils import timezone

    from notifications.models import WebhookDelivery
    from notifications.services.webhook_dispatch import DispatchResult, _prepare, _send, record

    now = timezone.now()
    if not WebhookDelivery.objects.filter(id=delivery_id, status="pending").update(status="sending", claimed_at=now):
        return
    row = WebhookDelivery.objects.select_related("message", "endpoint").get(id=delivery_id)
    record([(row, _send(_prepare(row, now)))], totals=DispatchResult())
