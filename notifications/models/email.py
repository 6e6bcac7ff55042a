"""Outbound e-mail: one row per message, the record an operator reads (and the job's state)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class SendStatus(models.TextChoices):
    """The life of one send, shared by e-mails and push deliveries.

    ``queued → sending`` is a conditional UPDATE (the claim): only the claimer talks to the
    server. ``sending → sent`` after it accepted; ``sending → queued`` after a transient failure
    with attempts left; ``sending → failed`` otherwise. A row left ``sending`` by a worker that
    died mid-conversation is never sent again: the stale-send sweep fails it as "outcome unknown".
    """

    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboundEmail(models.Model):
    """An e-mail the system decided to send (``notifications.services.queue_email``).

    Subject and bodies are rendered when the e-mail is queued, so the row holds exactly what is
    sent, a template error surfaces at the call, and a later template edit cannot change a
    message already accepted.
    """

    Status = SendStatus

    tenant = models.ForeignKey("broxiva.Tenant", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="outbound_emails")
    # NULL, not "": rows without a key must not collide in the unique constraints below.
    key = models.CharField(max_length=255, null=True, blank=True,  # noqa: DJ001
                           help_text="Idempotency key: the same key (per tenant) returns this row, no new e-mail")
    to = models.JSONField(default=list, help_text="Recipient addresses")
    from_email = models.CharField(max_length=320)
    subject = models.CharField(max_length=998)
    text = models.TextField()
    html = models.TextField(blank=True)
    template = models.CharField(max_length=100, blank=True, help_text="Template it was rendered from, if any")
    message_id = models.CharField(max_length=255, help_text="The Message-ID header, fixed when queued")
    status = models.CharField(max_length=16, choices=SendStatus.choices, default=SendStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0, help_text="SMTP conversations started")
    last_error = models.TextField(blank=True)
    job_id = models.CharField(max_length=128, blank=True, help_text="The RQ job that sends it")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When the last attempt claimed it")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "notification_emails"
        ordering = ["-created_at", "-id"]
        verbose_name = "outbound e-mail"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], condition=Q(key__isnull=False, tenant__isnull=False),
                                    name="notification_email_tenant_key"),
            models.UniqueConstraint(fields=["key"], condition=Q(key__isnull=False, tenant__isnull=True),
                                    name="notification_email_key_without_tenant"),
        ]
        indexes = [models.Index(fields=["status", "claimed_at"], name="notification_email_status")]

    def __str__(self) -> str:
        return f"{self.subject[:60]} → {', '.join(self.to)[:60]} ({self.status})"
