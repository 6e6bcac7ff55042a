"""Push notifications: the devices users registered, and one delivery row per device per push."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from notifications.models.email import SendStatus


class Device(models.Model):
    """A browser's Web Push subscription or an app's FCM registration token, for one user.

    The subscription is what the client gave us: ``endpoint`` (a push service URL, called
    through the kernel's destination guard) with its ``p256dh``/``auth`` keys, or ``token``.
    A device the push service reports gone (404/410, ``UNREGISTERED``) is deactivated with the
    reason, never deleted, so the admin shows why a user stopped receiving pushes.
    """

    class Platform(models.TextChoices):
        WEBPUSH = "webpush", "Web Push"
        FCM = "fcm", "Firebase Cloud Messaging"

    tenant = models.ForeignKey("broxiva.Tenant", on_delete=models.CASCADE, related_name="push_devices")
    user_ref = models.CharField(max_length=255, help_text="The tenant's own reference for the user")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    endpoint = models.URLField(max_length=2048, blank=True, help_text="Web Push: the push service URL")
    p256dh = models.CharField(max_length=255, blank=True, help_text="Web Push: the client's P-256 public key")
    auth = models.CharField(max_length=255, blank=True, help_text="Web Push: the client's auth secret")
    token = models.CharField(max_length=1024, blank=True, help_text="FCM: the registration token")
    is_active = models.BooleanField(default=True)
    last_error = models.TextField(blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "notification_devices"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "endpoint"], condition=Q(platform="webpush"),
                                    name="notification_device_webpush_endpoint"),
            models.UniqueConstraint(fields=["tenant", "token"], condition=Q(platform="fcm"),
                                    name="notification_device_fcm_token"),
        ]
        indexes = [models.Index(fields=["tenant", "user_ref", "is_active"], name="notification_device_user")]

    def __str__(self) -> str:
        return f"{self.platform} device {self.pk} of {self.user_ref}"


class PushDelivery(models.Model):
    """One push to one device: every send recorded, none sent twice (same states as e-mails)."""

    Status = SendStatus

    tenant = models.ForeignKey("broxiva.Tenant", on_delete=models.CASCADE, related_name="push_deliveries")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="deliveries")
    key = models.CharField(max_length=255, null=True, blank=True,  # noqa: DJ001 -- NULL: no key, no constraint
                           help_text="Idempotency key: the same key for the same user reuses these deliveries")
    title = models.CharField(max_length=255)
    body = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=SendStatus.choices, default=SendStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0, help_text="Requests to the push service started")
    last_error = models.TextField(blank=True)
    job_id = models.CharField(max_length=128, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "notification_push_deliveries"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "push deliveries"
        constraints = [
            models.UniqueConstraint(fields=["device", "key"], condition=Q(key__isnull=False),
                                    name="notification_push_device_key"),
        ]
        indexes = [models.Index(fields=["status", "claimed_at"], name="notification_push_status")]

    def __str__(self) -> str:
        return f"push {self.pk} to device {self.device_id} ({self.status})"
