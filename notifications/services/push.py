"""Push: devices, ``queue_push`` (one delivery per active device), ``push_send`` (at most once)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from broxiva.models import Tenant
from broxiva.queues import enqueue_many
from notifications.errors import PushSendError, PushSendFailed
from notifications.models import Device, PushDelivery, SendStatus
from notifications.providers import fcm, webpush
from notifications.services import _sends

logger = logging.getLogger(__name__)

JOB = "notifications.jobs.push.push_send_job"
# Web Push caps a message at 4096 bytes once encrypted (RFC 8291: 4078 of plaintext); FCM counts
# 4096 bytes of data. Refusing bigger payloads at the call beats failing every delivery later.
MAX_PAYLOAD_BYTES = 3800
# Keys FCM reserves in ``data`` (it refuses the message): refused for every platform, so one
# payload works everywhere.
RESERVED_DATA_KEYS = ("from", "message_type", "notification")
URGENCIES = ("very-low", "low", "normal", "high")


class DeferDelivery(Exception):  # noqa: N818 -- a signal to the job, which turns it into DeferJob
    def __init__(self, seconds: float, reason: str) -> None:
        self.seconds = seconds
        self.reason = reason
        super().__init__(f"deferred {seconds:.0f}s: {reason}")


# --- Devices -----------------------------------------------------------------------------------


def register_device(
    *,
    tenant_id: int,
    user_ref: str,
    platform: str,
    endpoint: str | None = None,
    p256dh: str | None = None,
    auth: str | None = None,
    token: str | None = None,
) -> int:
    """Record a device (or refresh the one with the same endpoint/token) and return its id.

    Web Push needs ``endpoint`` (http/https) and the subscription's ``p256dh`` and ``auth``
    keys, which must be able to encrypt; FCM needs ``token``. Registering again reactivates a
    device and moves it to ``user_ref``. Raise ``ValueError`` for bad input (nothing stored).
    """
    _tenant(tenant_id)
    user_ref = _user_ref(user_ref)
    if platform == Device.Platform.WEBPUSH:
        if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in ("http", "https") \
                or not urlsplit(endpoint).hostname or len(endpoint) > 2048:
            raise ValueError("a Web Push device needs its subscription's http(s) endpoint (at most 2048 characters)")
        if not isinstance(p256dh, str) or not isinstance(auth, str):
            raise ValueError("a Web Push device needs the subscription's p256dh and auth keys")
        webpush.check_keys(webpush.Subscription(endpoint, p256dh, auth))
        lookup = {"endpoint": endpoint}
        fields = {"p256dh": p256dh, "auth": auth, "token": ""}
    elif platform == Device.Platform.FCM:
        if not isinstance(token, str) or not token.strip() or len(token) > 1024 or any(c.isspace() for c in token):
            raise ValueError("an FCM device needs its registration token")
        lookup = {"token": token}
        fields = {"endpoint": "", "p256dh": "", "auth": ""}
    else:
        raise ValueError(f"platform must be one of {', '.join(Device.Platform.values)}, not {platform!r}")
    defaults = {**fields, "user_ref": user_ref, "is_active": True, "last_error": "", "deactivated_at": None}
    try:
        with transaction.atomic():
            device, created = Device.objects.update_or_create(
                tenant_id=tenant_id, platform=platform, **lookup, defaults=defaults)
    except IntegrityError:  # a concurrent registration of the same subscription
        device, created = Device.objects.update_or_create(
            tenant_id=tenant_id, platform=platform, **lookup, defaults=defaults)
    logger.info("push device %s id=%s tenant=%s platform=%s", "registered" if created else "refreshed", device.pk,
                tenant_id, platform)
    return device.pk


def deactivate_device(*, device_id: int, reason: str) -> bool:
    """Stop pushing to a device, recording why; return False if it was already inactive."""
    return bool(Device.objects.filter(pk=device_id, is_active=True).update(
        is_active=False, last_error=reason[:2000], deactivated_at=timezone.now(), updated_at=timezone.now()))


# --- Queueing ----------------------------------------------------------------------------------


def queue_push(
    *, tenant_id: int, user_ref: str, title: str, body: str, data: dict[str, Any] | None = None,
    key: str | None = None,
) -> int:
    """Record one delivery per active device of the user and enqueue them; return how many.

    The jobs reach Redis after the transaction commits (the outbox). The same ``key`` for the
    same user returns the number of deliveries it already made and creates none. Raise
    ``ValueError`` for bad input (nothing stored).
    """
    _tenant(tenant_id)
    user_ref = _user_ref(user_ref)
    title, body, data = _content(title, body, data)
    if key is not None and (not isinstance(key, str) or not key.strip() or len(key) > 255):
        raise ValueError("key must be a non-empty string of at most 255 characters")
    if key is not None:
        existing = _existing(tenant_id, user_ref, key)
        if existing:
            return existing
    devices = list(Device.objects.filter(tenant_id=tenant_id, user_ref=user_ref, is_active=True)
                   .values_list("id", flat=True))
    if not devices:
        logger.info("push for tenant=%s user=%s: no active device", tenant_id, user_ref)
        return 0
    try:
        with transaction.atomic():
            deliveries = PushDelivery.objects.bulk_create([
                PushDelivery(tenant_id=tenant_id, device_id=device_id, key=key, title=title, body=body, data=data)
                for device_id in devices
            ])
            # Inside atomic(): one outbox INSERT for the batch, pushed (pipelined) after the commit.
            enqueue_many_with_ids(deliveries)
    except IntegrityError:
        if key is None:
            raise
        return _existing(tenant_id, user_ref, key)
    logger.info("push queued tenant=%s user=%s deliveries=%d", tenant_id, user_ref, len(deliveries))
    return len(deliveries)


def enqueue_many_with_ids(deliveries: list[PushDelivery]) -> None:
    # enqueue_many assigns its own job ids; record them on the rows (one UPDATE per row is fine
    # for a user's handful of devices, and keeps the row → job link an operator follows).
    ids = enqueue_many("notification", JOB, [{"delivery_id": d.pk} for d in deliveries])
    for delivery, job_id in zip(deliveries, ids, strict=True):
        delivery.job_id = job_id
    PushDelivery.objects.bulk_update(deliveries, ["job_id"])


def _existing(tenant_id: int, user_ref: str, key: str) -> int:
    return PushDelivery.objects.filter(tenant_id=tenant_id, device__user_ref=user_ref, key=key).count()


def _tenant(tenant_id: object) -> None:
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, int):
        raise ValueError("tenant_id must be an integer")
    if not Tenant.objects.filter(pk=tenant_id).exists():
        raise ValueError(f"no tenant with id {tenant_id}")


def _user_ref(user_ref: object) -> str:
    if not isinstance(user_ref, str) or not user_ref.strip() or len(user_ref) > 255:
        raise ValueError("user_ref must be a non-empty string of at most 255 characters")
    return user_ref.strip()


def _content(title: object, body: object, data: object) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(title, str) or not title.strip() or len(title) > 255:
        raise ValueError("title must be a non-empty string of at most 255 characters")
    if not isinstance(body, str):
        raise ValueError("body must be a string")
    if data is None:
        data = {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and k for k in data):
        raise ValueError("data must be a dict with non-empty string keys")
    reserved = [k for k in data if k in RESERVED_DATA_KEYS or k.startswith(("google", "gcm"))]
    if reserved:
        raise ValueError(f"data keys reserved by push services: {', '.join(reserved)}")
    try:
        size = len(payload_bytes(title, body, data))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"data must be JSON-serialisable: {exc}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"the push is {size} bytes as JSON; push services take at most {MAX_PAYLOAD_BYTES}")
    return title.strip(), body, data


def payload_bytes(title: str, body: str, data: dict[str, Any]) -> bytes:
    """The Web Push message a service worker receives: ``{"title", "body", "data"}`` as JSON."""
    return json.dumps({"title": title, "body": body, "data": data}, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode()


# --- Sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushOutcome:
    id: int
    status: str
    skipped: bool = False
    device_deactivated: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"id": self.id, "status": str(self.status)}
        if self.skipped:
            result["skipped"] = True
        if self.device_deactivated:
            result["device_deactivated"] = True
        if self.reason:
            result["reason"] = self.reason
        return result


def push_send(*, delivery_id: int, final_attempt: bool, may_defer: bool = True) -> PushOutcome:
    """Send one delivery at most once and record the outcome on its row (and its device's).

    Not ``queued``: a duplicate or retried job, left alone. A device the service reports gone
    is deactivated and the delivery failed, with no retry (the job finishes: nothing to fix).
    A rate limit puts the row back and raises ``DeferDelivery`` (the job defers without spending
    an attempt). Other failures raise ``PushSendFailed`` with their ``transient``.
    """
    if not _sends.claim(PushDelivery, delivery_id):
        status = PushDelivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first()
        return PushOutcome(delivery_id, status or "missing", skipped=True)
    delivery = PushDelivery.objects.select_related("device").get(pk=delivery_id)
    device = delivery.device
    if not device.is_active:
        reason = f"device {device.pk} was deactivated: {device.last_error or 'by an operator'}"
        _sends.mark_failed(PushDelivery, delivery_id, error=reason)
        return PushOutcome(delivery_id, SendStatus.FAILED, reason=reason)
    try:
        _deliver(delivery)
    except PushSendError as exc:
        return _failed(delivery, exc, final_attempt=final_attempt, may_defer=may_defer)
    _sends.mark_sent(PushDelivery, delivery_id)
    logger.info("push sent delivery=%s device=%s platform=%s attempt=%d", delivery_id, device.pk, device.platform,
                delivery.attempts)
    return PushOutcome(delivery_id, SendStatus.SENT)


def _deliver(delivery: PushDelivery) -> None:
    device = delivery.device
    if device.platform == Device.Platform.WEBPUSH:
        webpush.send(webpush.Subscription(device.endpoint, device.p256dh, device.auth),
                     payload_bytes(delivery.title, delivery.body, delivery.data))
    else:
        fcm.send(token=device.token, title=delivery.title, body=delivery.body, data=delivery.data)


def _failed(delivery: PushDelivery, exc: PushSendError, *, final_attempt: bool, may_defer: bool) -> PushOutcome:
    pk, device = delivery.pk, delivery.device
    if exc.device_gone:
        _sends.mark_failed(PushDelivery, pk, error=exc.message)
        deactivate_device(device_id=device.pk, reason=exc.message)
        logger.warning("push delivery=%s: device %s deactivated: %s", pk, device.pk, exc.message)
        return PushOutcome(pk, SendStatus.FAILED, device_deactivated=True, reason=exc.message)
    if exc.retry_after is not None and may_defer:
        _sends.release(PushDelivery, pk, error=f"{exc.message}; deferred {exc.retry_after:.0f}s")
        raise DeferDelivery(exc.retry_after, exc.message)
    if exc.transient and not final_attempt:
        _sends.release(PushDelivery, pk, error=exc.message)
        logger.warning("push delivery=%s attempt %d failed, will retry: %s", pk, delivery.attempts, exc.message)
    else:
        reason = exc.message if not exc.transient else f"{exc.message} (no attempts left)"
        _sends.mark_failed(PushDelivery, pk, error=reason)
        logger.warning("push delivery=%s failed: %s", pk, reason)
    raise PushSendFailed(pk, exc.message, transient=exc.transient)


def fail_stale_deliveries(*, older_than: timedelta | None = None) -> int:
    """Fail push deliveries left ``sending`` by a worker that died mid-request (never re-sent)."""
    if older_than is None:
        older_than = timedelta(minutes=settings.NOTIFICATIONS_STALE_SENDING_MINUTES)
    return _sends.fail_stale(PushDelivery, older_than=older_than, what="the request to the push service")
