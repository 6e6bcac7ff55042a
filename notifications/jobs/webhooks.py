"""Jobs of the ``webhook-delivery`` queue (thin: call the service, return small counts).

There is no job per delivery: a dispatch job delivers every due delivery, many at a time
(``notifications.services.webhook_dispatch``). It takes no arguments, so no URL, payload or
secret ever sits in Redis; the rows in PostgreSQL are the work list.
"""

from __future__ import annotations

from typing import Any

from notifications.services import webhook_dispatch, webhooks


def webhook_dispatch_job() -> dict[str, Any]:
    """Deliver due webhooks until none is due or the job's time budget is spent.

    Queued after a publish commits (one for many events), scheduled at each retry's due time,
    and run every minute by the ``webhook-dispatch`` entry (which also recovers deliveries of a
    dispatcher that died). Several may run at once on several workers: claims skip each other.
    """
    webhooks.clear_dispatch_flag()
    result = webhook_dispatch.dispatch(on_retry=webhooks.schedule_dispatch)
    if result.budget_spent and _more_due():
        webhooks.request_dispatch()  # stopped at its time budget with work left: hand over
    return result.as_dict()


def _more_due() -> bool:
    from django.utils import timezone

    from notifications.models import WebhookDelivery

    return WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
    ).exists()


def webhook_endpoints_disable_job() -> dict[str, Any]:
    """Disable endpoints whose deliveries have all failed for WEBHOOK_DISABLE_AFTER_DAYS (and tell the tenant)."""
    return {"disabled": webhooks.endpoints_disable_failing()}
