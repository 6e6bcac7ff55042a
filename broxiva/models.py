"""The kernel's models: the tenant (the one model every app shares), alerts and the job outbox."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.deconstruct import deconstructible

_locale = RegexValidator(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", "Enter a locale such as en, en-US or pt-BR.")
_currency = RegexValidator(r"^[A-Z]{3}$", "Enter an ISO 4217 code such as USD.")


@deconstructible
class EachValidator:
    """Apply a validator to every item of a JSON list field."""

    def __init__(self, validator: RegexValidator) -> None:
        self.validator = validator

    def __call__(self, values: object) -> None:
        if not isinstance(values, list):
            raise ValidationError("Enter a list.")
        for value in values:
            self.validator(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EachValidator) and other.validator == self.validator


class Tenant(models.Model):
    """A shop on the marketplace, with its own locales and currencies."""

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    default_locale = models.CharField(max_length=16, default="en", validators=[_locale])
    enabled_locales = models.JSONField(default=list, blank=True, validators=[EachValidator(_locale)])
    default_currency = models.CharField(max_length=3, default="USD", validators=[_currency])
    enabled_currencies = models.JSONField(default=list, blank=True, validators=[EachValidator(_currency)])
    is_active = models.BooleanField(default=True)
    contact_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        if self.enabled_locales and self.default_locale not in self.enabled_locales:
            raise ValidationError({"enabled_locales": "The default locale must be one of the enabled locales."})
        if self.enabled_currencies and self.default_currency not in self.enabled_currencies:
            raise ValidationError({"enabled_currencies": "The default currency must be one of the enabled currencies."})

    @property
    def locales(self) -> list[str]:
        """Return every locale the shop publishes in, the default first."""
        return [self.default_locale, *[loc for loc in self.enabled_locales if loc != self.default_locale]]

    @property
    def currencies(self) -> list[str]:
        """Return every currency the shop sells in, the default first."""
        return [self.default_currency, *[c for c in self.enabled_currencies if c != self.default_currency]]


class Alert(models.Model):
    """An operator alert (``broxiva.alerts.notify``): recorded here, then sent to the channels.

    Queue-health alerts have ``source="queue-health"`` and carry the queue, its new and previous
    status and the reasons in ``details``; the last one per queue is the state the next check
    compares against. The delivery fields say what each channel did, so a lost alert is visible.
    """

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    class Delivery(models.TextChoices):
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        OFF = "off", "Not configured"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    source = models.CharField(max_length=100, help_text="What raised it: queue-health, fx, …")
    subject = models.CharField(max_length=255)
    body = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    email_status = models.CharField(max_length=16, choices=Delivery.choices, default=Delivery.OFF)
    webhook_status = models.CharField(max_length=16, choices=Delivery.choices, default=Delivery.OFF)
    delivery_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["source", "-created_at"], name="alert_source_recent")]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.subject}"


class OutboxJob(models.Model):
    """A job decided inside a database transaction, waiting to reach Redis (``broxiva.outbox``).

    ``enqueue()`` inside ``transaction.atomic()`` writes the row in the caller's transaction; the
    commit hook pushes it to Redis and deletes it. A row still here is a job Redis has not
    confirmed: the periodic relay pushes it (``attempts`` and ``last_error`` say what failed).
    Arguments are the job's validated, JSON-serialisable ones (ids and plain values, never secrets).
    """

    job_id = models.CharField(max_length=128, db_index=True, help_text="The RQ job id it is pushed with")
    queue = models.CharField(max_length=64, help_text="Logical queue name")
    func = models.CharField(max_length=255, help_text="Dotted path of the job function")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    at_front = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Pushes tried and failed")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "outbox job"

    def __str__(self) -> str:
        return f"{self.queue} {self.func} ({self.job_id})"
