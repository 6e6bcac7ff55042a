"""Exchange-rate snapshots: appended, never updated in place (only a held rate's status moves)."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class ExchangeRate(models.Model):
    """``rate`` units of ``quote_currency`` for 1 ``base_currency``, as ``provider`` stated it at ``as_of``.

    ``numeric(38, 20)``: 18 integer digits and 20 decimal places, so 0.00000001 and 150000 are
    stored exactly, and a cross rate (computed with 34 significant digits, then rounded half-even
    to 20 places) keeps at least 12 significant digits for any rate down to 1e-8.
    """

    class Status(models.TextChoices):
        PUBLISHED = "published", "published"
        # Moved more than FX_MAX_CHANGE_PERCENT from the last published rate: stored, not served
        # until staff confirm it or a later fetch agrees with it.
        HELD = "held", "held back"

    base_currency = models.CharField(max_length=3)
    quote_currency = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=38, decimal_places=20)
    provider = models.CharField(max_length=32)
    as_of = models.DateTimeField(help_text="The provider's own timestamp (the ECB's: its reference date, 00:00 UTC).")
    fetched_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PUBLISHED)

    class Meta:
        db_table = "exchange_rate"
        ordering = ["-as_of", "base_currency", "quote_currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "base_currency", "quote_currency", "as_of"], name="exchange_rate_once_per_as_of"
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchange_rate_positive"),
            models.CheckConstraint(
                condition=~Q(base_currency=F("quote_currency")), name="exchange_rate_two_currencies"
            ),
        ]
        indexes = [
            models.Index(fields=["base_currency", "quote_currency", "-as_of"], name="exchange_rate_pair_as_of"),
            models.Index(fields=["status"], name="exchange_rate_held", condition=Q(status="held")),
        ]

    def __str__(self) -> str:
        return f"{self.base_currency}/{self.quote_currency} {self.rate} ({self.provider}, {self.as_of:%Y-%m-%d %H:%M})"
