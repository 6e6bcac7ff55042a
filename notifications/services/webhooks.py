"""Outbound webhooks: publish events, rotate secrets, resend, and disable endpoints that only fail.

``publish_event`` stores the event and one delivery per subscribed active endpoint in one
transaction; after the commit it asks for a dispatch (``request_dispatch``). The sending itself
is ``notifications.services.webhook_dispatch`` (many at a time, on the ``webhook-delivery``
queue); docs/webhooks.md has the whole picture.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Min
from django.utils import timezone

from broxiva.connections import get_redis
from broxiva.http import safe_url
from broxiva.keys import build_key, ttl
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from notifications.models.webhooks import new_secret
from notifications.services.webhook_dispatch import DISPATCH_JOB, QUEUE, retry_kick_times

logger = logging.getLogger(__name__)

_EVENT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
TEST_EVENT_TYPE = "webhook.test"
DISABLED_TEMPLATE = "webhook-endpoint-disabled"


def _check(*, tenant_id: int, event_type: str, payload: Any, key: str | None) -> None:
    from broxiva.models import Tenant

    if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
        raise ValueError(f"event_type {event_type!r} must be 1-100 letters, digits, '.', '_', ':' or '-'")
    if not isinstance(payload, dict):
        raise ValueError("payload must be a JSON object (a dict)")
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload must be JSON-serialisable: {exc}") from None
    if key is not None and (not isinstance(key, str) or not key.strip() or len(key) > 200):
        raise ValueError("key must be a non-empty string of at most 200 characters")
    if (
        isinstance(tenant_id, bool)
        or not isinstance(tenant_id, int)
        or not Tenant.objects.filter(id=tenant_id).exists()
    ):
        raise ValueError(f"no tenant with id {tenant_id!r}")


def publish_event(*, tenant_id: int, event_type: str, payload: dict[str, Any], key: str | None = None) -> str:
    """Store an event and one delivery per active endpoint subscribed to it; return the message id.

    An endpoint with an empty ``event_types`` receives every type. The same ``key`` for the same
    tenant returns the message already stored (delivered once). Deliveries start after the
    caller's transaction commits; on rollback nothing was stored and nothing is sent. Bad input
    raises ``ValueError`` before anything is stored.
    """
    _check(tenant_id=tenant_id, event_type=event_type, payload=payload, key=key)
    with transaction.atomic():
        if key is not None:
            existing = WebhookMessage.objects.filter(tenant_id=tenant_id, key=key).values_list("id", flat=True).first()
            if existing:
                return existing
        try:
            with transaction.atomic():
                message = WebhookMessage.objects.create(
                    tenant_id=tenant_id, event_type=event_type, payload=payload, key=key
                )
        except IntegrityError:
            if key is None:
                raise
            # Another caller stored the same key between our read and our insert.
            return WebhookMessage.objects.values_list("id", flat=True).get(tenant_id=tenant_id, key=key)
        endpoints = [
            e
            for e in WebhookEndpoint.objects.filter(tenant_id=tenant_id, is_active=True)
            if e.subscribes_to(event_type)
        ]
        _deliver(message, endpoints)
    logger.info(
        "webhook event published msg=%s type=%s tenant=%s endpoints=%d",
        message.id,
        event_type,
        tenant_id,
        len(endpoints),
    )
    return message.id


def _deliver(
    message: WebhookMessage, endpoints: list[WebhookEndpoint], resend_of: dict[int, int] | None = None
) -> list[WebhookDelivery]:
    if not endpoints:
        return []
    now = timezone.now()
    created = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(message=message, endpoint=e, next_attempt_at=now, resend_of_id=(resend_of or {}).get(e.id))
            for e in endpoints
        ]
    )
    transaction.on_commit(request_dispatch)
    return created


def send_test_event(*, endpoint_id: int) -> str:
    """Send a ``webhook.test`` event to one endpoint (whatever its ``event_types``); return the message id."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(id=endpoint_id)
        if not endpoint.is_active:
            raise ValueError(f"endpoint {endpoint_id} is disabled: {endpoint.disabled_reason or 'no reason recorded'}")
        message = WebhookMessage.objects.create(
            tenant_id=endpoint.tenant_id,
            event_type=TEST_EVENT_TYPE,
            payload={
                "type": TEST_EVENT_TYPE,
                "timestamp": timezone.now().isoformat(),
                "data": {"endpoint_id": endpoint.id},
            },
        )
        _deliver(message, [endpoint])
    return message.id


def resend_delivery(*, delivery_id: int) -> int:
    """Create a new delivery of the same message to the same endpoint (same ``webhook-id``); return its id."""
    with transaction.atomic():
        original = WebhookDelivery.objects.select_related("endpoint", "message").get(id=delivery_id)
        if not original.endpoint.is_active:
            raise ValueError(f"endpoint {original.endpoint_id} is disabled: {original.endpoint.disabled_reason}")
        (delivery,) = _deliver(original.message, [original.endpoint], resend_of={original.endpoint_id: original.id})
    return delivery.id


def rotate_endpoint_secret(endpoint_id: int) -> str:
    """Give an endpoint a new secret and return it; the old one keeps signing during the overlap.

    For ``WEBHOOK_SECRET_ROTATION_HOURS`` every request carries two signatures (new, then
    previous), so a receiver can switch secrets at any moment in that window.
    """
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(id=endpoint_id)
        hours = settings.WEBHOOK_SECRET_ROTATION_HOURS
        endpoint.previous_secret = endpoint.secret if hours else ""
        endpoint.previous_secret_expires_at = timezone.now() + timedelta(hours=hours) if hours else None
        endpoint.secret = new_secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    logger.info("webhook endpoint secret rotated endpoint=%s overlap_hours=%d", endpoint_id, hours)
    return endpoint.secret


# --- Asking for a dispatch -----------------------------------------------------------------------


def _flag() -> str:
    return build_key("webhook", "dispatch", "queued")


def request_dispatch() -> None:
    """Make sure a dispatch job is queued (one for any number of events published meanwhile).

    Called after commit. A flag in Redis (``webhook:dispatch:queued``, cleared by the job when it
    starts) keeps a thousand events from queueing a thousand jobs. If Redis is unavailable the
    rows wait in PostgreSQL for the ``webhook-dispatch`` periodic entry (every minute): nothing
    is lost, it is only later.
    """
    from broxiva.queues import enqueue

    try:
        client = get_redis()
        if client.set(_flag(), "1", nx=True, ex=ttl("webhook")):
            try:
                enqueue(QUEUE, DISPATCH_JOB)
            except Exception:
                client.delete(_flag())
                raise
    except Exception as exc:
        logger.warning("webhook dispatch not queued (%s); the periodic dispatch will deliver", exc.__class__.__name__)


def clear_dispatch_flag() -> None:
    """Called by a dispatch job as it starts: events committed from now on queue a new one."""
    get_redis().delete(_flag())


def schedule_dispatch(times: list[datetime]) -> None:
    """Schedule one dispatch job at each distinct second of ``times`` (deliveries' retry times).

    A flag per second (``webhook:dispatch-at:<epoch>``) keeps the dispatcher's many bulk
    recordings, and several dispatchers, from scheduling the same second twice.
    """
    from broxiva.queues import get_queue, job_options

    try:
        client = get_redis()
        queue = get_queue(QUEUE)
        options = job_options(QUEUE)
        # enqueue_at() reads RQ's job options under their enqueue() names (job_timeout, not timeout).
        options["job_timeout"] = options.pop("timeout")
        now = timezone.now().timestamp()
        for when in retry_kick_times(times):
            second = int(when.timestamp())
            flag = build_key("webhook", "dispatch-at", second)
            if client.set(flag, "1", nx=True, ex=max(60, int(second - now) + 60)):
                queue.enqueue_at(when, DISPATCH_JOB, **options)
    except Exception as exc:
        logger.warning(
            "webhook retry dispatch not scheduled (%s); the periodic dispatch will retry", exc.__class__.__name__
        )


# --- Disabling endpoints that only fail --------------------------------------------------------


def endpoints_disable_failing(*, now: datetime | None = None) -> list[int]:
    """Disable active endpoints whose deliveries have all failed for ``WEBHOOK_DISABLE_AFTER_DAYS``.

    An endpoint qualifies when its failing streak (the first failed try after its last success,
    or its first failed try ever) began more than that many days ago: no success in the window,
    and at least one failure older than it. Deferred tries (Retry-After) are neither. The
    tenant's ``contact_email`` is told once per disablement. Return the disabled endpoint ids.
    """
    now = now or timezone.now()
    days = settings.WEBHOOK_DISABLE_AFTER_DAYS
    cutoff = now - timedelta(days=days)
    failed = WebhookAttempt.objects.filter(succeeded=False, deferred=False)
    candidates = WebhookEndpoint.objects.filter(
        is_active=True, id__in=failed.filter(created_at__lte=cutoff).values("delivery__endpoint_id")
    )
    disabled = []
    for endpoint in candidates:
        attempts = WebhookAttempt.objects.filter(delivery__endpoint=endpoint)
        last_success = attempts.filter(succeeded=True).aggregate(at=Max("created_at"))["at"]
        streak = attempts.filter(succeeded=False, deferred=False)
        if last_success is not None:
            streak = streak.filter(created_at__gt=last_success)
        began = streak.aggregate(at=Min("created_at"))["at"]
        if began is None or began > cutoff:
            continue
        if _disable_and_tell(endpoint.id, now=now, days=days, began=began):
            disabled.append(endpoint.id)
    return disabled


def _disable_and_tell(endpoint_id: int, *, now: datetime, days: int, began: datetime) -> bool:
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().select_related("tenant").get(id=endpoint_id)
        if not endpoint.is_active:
            return False
        reason = f"every delivery failed for {days} days (since {began:%Y-%m-%d %H:%M} UTC)"
        endpoint.is_active, endpoint.disabled_reason, endpoint.disabled_at = False, reason, now
        endpoint.save(update_fields=["is_active", "disabled_reason", "disabled_at", "updated_at"])
        # Deliveries still waiting for this endpoint will not be sent: say so on them now.
        WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING).update(
            status=WebhookDelivery.Status.FAILED, last_error=f"endpoint disabled: {reason}", updated_at=now
        )
        tenant = endpoint.tenant
        if tenant.contact_email:
            # The e-mail channel (notifications.services.email) records the message in this
            # transaction; its key makes it one e-mail per disablement.
            from notifications.services.email import queue_email

            queue_email(
                to=tenant.contact_email,
                template=DISABLED_TEMPLATE,
                tenant_id=tenant.id,
                key=f"webhook-endpoint-disabled:{endpoint.id}:{int(now.timestamp())}",
                context={
                    "tenant_name": tenant.name,
                    "endpoint_id": endpoint.id,
                    "url": safe_url(endpoint.url),
                    "description": endpoint.description,
                    "reason": reason,
                    "days": days,
                },
            )
        else:
            logger.warning(
                "webhook endpoint disabled but tenant %s has no contact_email endpoint=%s", tenant.slug, endpoint.id
            )
    logger.warning("webhook endpoint disabled endpoint=%s tenant=%s reason=%s", endpoint_id, tenant.slug, reason)
    return True
