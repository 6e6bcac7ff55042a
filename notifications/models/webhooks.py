"""Outbound webhooks in the shape Svix and Saleor use: endpoint, message, delivery, attempt.

A message is stored once per event; each endpoint subscribed to it gets a delivery row, and
each try of a delivery leaves an attempt row. The delivery row is the source of truth (and its
own outbox): the dispatcher claims it with a conditional UPDATE before sending, so a duplicate
job never sends a delivered delivery again, and a delivery whose kick was lost is picked up by
the periodic poll (docs/webhooks.md).
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the Standard Webhooks prefix, not a secret
MESSAGE_PREFIX = "msg_"


def new_secret() -> str:
    """Return a Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes (Svix's size)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def new_message_id() -> str:
    """Return ``msg_`` + a KSUID-like id: 5 bytes of seconds then 11 random bytes, base32.

    Time-ordered (ids sort by creation second) and unguessable; 26 lowercase characters after
    the prefix, safe in a header, a URL and an RQ job id.
    """
    raw = int(time.time()).to_bytes(5, "big") + os.urandom(11)
    return MESSAGE_PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()


def validate_endpoint_url(value: str) -> None:
    """Refuse anything but an absolute http(s) URL with a host and no credentials.

    Where it points is checked again at every send by the destination guard (``broxiva.http``,
    ``untrusted=True``): a name can resolve to a private address later.
    """
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValidationError("Enter a valid URL.", code="invalid") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError("The URL must start with https:// or http://.", code="scheme")
    if not parts.hostname:
        raise ValidationError("The URL must name a host.", code="host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("The URL must not carry credentials; the signature authenticates us.", code="userinfo")
    if port == 0:
        raise ValidationError("Enter a valid port.", code="port")
    # A literal address can be judged now; a name is judged at every send, when it is resolved.
    from broxiva.http.guard import allowed, parse_address, refusal_reason

    address = parse_address(parts.hostname)
    if address is not None and (why := refusal_reason(address)) and not allowed(address):
        raise ValidationError(f"The URL points at a {why} address, which webhooks may not reach.", code="destination")


class WebhookEndpoint(models.Model):
    """A tenant's receiver. ``event_types`` empty means every event type."""

    tenant = models.ForeignKey("broxiva.Tenant", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000, validators=[validate_endpoint_url])
    description = models.CharField(max_length=200, blank=True)
    # The secret signs every request, so it is stored as it is (it must be readable to sign);
    # the admin never shows it and no job argument or log line carries it.
    secret = models.CharField(max_length=100, default=new_secret, editable=False)
    # During a rotation's overlap both secrets sign (two ``v1,`` entries in webhook-signature).
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    event_types = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "id"]

    def __str__(self) -> str:
        return f"{self.tenant} → {urlsplit(self.url).hostname}"

    def clean(self) -> None:
        types = self.event_types
        if not isinstance(types, list) or not all(isinstance(t, str) and t.strip() for t in types):
            raise ValidationError({"event_types": "Enter a list of event type names (empty for all)."})

    def signing_secrets(self, at: Any = None) -> list[str]:
        """Return the secrets that sign now: the current one, and the previous one during the overlap."""
        at = at or timezone.now()
        result = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > at:
            result.append(self.previous_secret)
        return result

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookMessage(models.Model):
    """One event, stored once; its ``id`` (``msg_…``) is the ``webhook-id`` of every delivery."""

    id = models.CharField(primary_key=True, max_length=40, default=new_message_id, editable=False)
    tenant = models.ForeignKey("broxiva.Tenant", on_delete=models.CASCADE, related_name="webhook_messages")
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    # NULL, not "": messages without a key stay outside the unique (tenant, key) constraint.
    key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key"], condition=Q(key__isnull=False), name="webhook_message_key_per_tenant"
            ),
        ]
        indexes = [models.Index(fields=["event_type"])]

    def __str__(self) -> str:
        return f"{self.id} {self.event_type}"


class WebhookDelivery(models.Model):
    """One message to one endpoint; ``resend_of`` marks an explicit resend (a new row, same ``webhook-id``)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    resend_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Tries that counted (deferred ones do not).")
    deferrals = models.PositiveIntegerField(default=0, help_text="Tries answered 429/503 with Retry-After.")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Set when a dispatcher claims the row (status "sending"); a claim older than the lease is
    # a dispatcher that died mid-send, and the poll puts the row back (docs/webhooks.md).
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["message", "endpoint"],
                condition=Q(resend_of__isnull=True),
                name="webhook_delivery_once_per_endpoint",
            ),
        ]
        indexes = [
            # The dispatcher's claim: due pending rows, oldest first.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due"),
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="webhook_delivery_sending"),
            models.Index(fields=["endpoint", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} → endpoint {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One try of a delivery: what the receiver answered (or why there was no answer)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField(help_text="The delivery's attempt count when this try was made (1-based).")
    succeeded = models.BooleanField(default=False)
    deferred = models.BooleanField(default=False, help_text="429/503 with Retry-After: no attempt spent.")
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True, help_text="At most 1 KB, secrets and signatures stripped.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["delivery_id", "id"]
        indexes = [models.Index(fields=["delivery", "created_at"])]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
