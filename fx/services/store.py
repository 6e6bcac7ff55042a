"""Writing snapshots: the jump guard, held rates, and set-based inserts.

The number of SQL queries per refresh does not depend on the number of currencies: one bulk
``INSERT … ON CONFLICT DO NOTHING`` (the unique constraint makes a re-fetch of the same
provider/pair/as_of a no-op), at most one ``SELECT`` of held rates and one ``UPDATE`` to
publish the ones a fetch confirmed, one ``SELECT`` counting what was stored, and — only when
the Redis cache is gone — one ``SELECT`` of the previous published rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from fx.models import ExchangeRate
from fx.selectors import published_rates
from fx.services.cache import CachedRate, epoch

HUNDRED = Decimal(100)


@dataclass
class Held:
    base: str
    quote: str
    rate: Decimal
    previous: Decimal
    change_percent: Decimal
    # Already held from this very snapshot (the same document fetched again): alerted before.
    repeat: bool = False

    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"

    def as_dict(self) -> dict[str, str]:
        return {"pair": self.pair, "rate": str(self.rate), "previous": str(self.previous),
                "change_percent": f"{self.change_percent:.2f}"}


@dataclass
class StoreOutcome:
    stored: dict[str, int] = field(default_factory=dict)  # new rows per base
    published: dict[str, dict[str, CachedRate]] = field(default_factory=dict)
    held: list[Held] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)  # pairs whose held rate this fetch confirmed


def change_percent(new: Decimal, old: Decimal) -> Decimal:
    return abs(new - old) / old * HUNDRED


def _previous(bases: list[str], as_of: datetime) -> dict[tuple[str, str], CachedRate]:
    """The last published rate per pair: from the Redis cache, or Postgres for a base it lost."""
    # Older than the staleness bound, a rate is no reference for "a jump" any more.
    previous, _ = published_rates(bases, since=as_of - timedelta(hours=settings.FX_MAX_AGE_HOURS))
    return previous


def store_snapshots(
    *, provider: str, as_of: datetime, fetched_at: datetime, tables: dict[str, dict[str, Decimal]]
) -> StoreOutcome:
    """Append one fetch's rates (all bases) and decide which are published and which held back."""
    threshold = Decimal(str(settings.FX_MAX_CHANGE_PERCENT))
    bases = list(tables)
    previous = _previous(bases, as_of) if threshold > 0 else {}
    jumps: dict[tuple[str, str], Held] = {}
    for base, table in tables.items():
        for quote, rate in table.items():
            prev = previous.get((base, quote))
            if prev is None:
                continue
            change = change_percent(rate, prev.rate)
            if change > threshold:
                jumps[(base, quote)] = Held(base, quote, rate, prev.rate, change)
    outcome = StoreOutcome()
    with transaction.atomic():
        confirmed_ids: list[int] = []
        if jumps:
            # A jump is real when an earlier snapshot already showed (about) the same rate. The
            # same snapshot fetched again (the ECB serves one document all day, so the next
            # hourly refresh gets it again) is no second opinion: the rate stays held.
            since = as_of - timedelta(hours=settings.FX_MAX_AGE_HOURS)
            held_rows = ExchangeRate.objects.filter(
                status=ExchangeRate.Status.HELD, base_currency__in=bases, as_of__gte=since
            ).only("id", "base_currency", "quote_currency", "rate", "provider", "as_of")
            for row in held_rows:
                jump = jumps.get((row.base_currency, row.quote_currency))
                if jump is not None and row.provider == provider and row.as_of == as_of:
                    jump.repeat = True
                elif jump is not None and change_percent(jump.rate, row.rate) <= threshold:
                    confirmed_ids.append(row.id)
                    outcome.confirmed.append(jump.pair)
                    del jumps[(row.base_currency, row.quote_currency)]
        outcome.confirmed = sorted(set(outcome.confirmed))
        rows = [
            ExchangeRate(
                base_currency=base, quote_currency=quote, rate=rate, provider=provider, as_of=as_of,
                fetched_at=fetched_at,
                status=ExchangeRate.Status.HELD if (base, quote) in jumps else ExchangeRate.Status.PUBLISHED,
            )
            for base, table in tables.items()
            for quote, rate in table.items()
        ]
        ExchangeRate.objects.bulk_create(rows, ignore_conflicts=True)
        if confirmed_ids:
            ExchangeRate.objects.filter(id__in=confirmed_ids).update(status=ExchangeRate.Status.PUBLISHED)
        counts = (
            ExchangeRate.objects.filter(provider=provider, as_of=as_of, fetched_at=fetched_at, base_currency__in=bases)
            .values("base_currency").annotate(n=Count("id"))
        )
        outcome.stored = {row["base_currency"]: row["n"] for row in counts}
    as_of_epoch = epoch(as_of)
    for base, table in tables.items():
        outcome.published[base] = {
            quote: CachedRate(rate, as_of_epoch, provider)
            for quote, rate in table.items()
            if (base, quote) not in jumps
        }
    outcome.held = sorted(jumps.values(), key=lambda h: h.pair)
    return outcome


def confirm_held(ids: list[int]) -> list[ExchangeRate]:
    """Mark held rates as published (staff confirmed them); return the rows that changed."""
    with transaction.atomic():
        rows = list(
            ExchangeRate.objects.select_for_update().filter(id__in=ids, status=ExchangeRate.Status.HELD)
        )
        ExchangeRate.objects.filter(id__in=[r.id for r in rows]).update(status=ExchangeRate.Status.PUBLISHED)
    for row in rows:
        row.status = ExchangeRate.Status.PUBLISHED
    return rows
