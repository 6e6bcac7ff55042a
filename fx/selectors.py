"""Reads of published rates that more than one place needs (the admin, the store, conversion).

- ``latest_published_rows``: the latest published snapshot of each pair, as a queryset (the
  admin filters its change list with it).
- ``latest_published``: the same rows as ``{(base, quote): CachedRate}``.
- ``published_rates``: the rates in force for some bases, from the Redis cache in one round
  trip, and from Postgres for any base whose hash Redis no longer holds.

"Latest" orders by ``as_of``, then ``fetched_at``, then ``id``: of two snapshots stating the
same moment, the one fetched last wins. Held rates are never read here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber

from fx.models import ExchangeRate

if TYPE_CHECKING:
    from fx.services.cache import CachedRate

# fx.services.cache is imported where it is used: fx.services' own modules import this one.

Pair = tuple[str, str]


def latest_published_rows(*, bases: Iterable[str] | None = None, quotes: Iterable[str] | None = None,
                          since: datetime | None = None, until: datetime | None = None) -> QuerySet[ExchangeRate]:
    """Return the latest published row of every pair, among rows stated between ``since`` and ``until``."""
    qs = ExchangeRate.objects.filter(status=ExchangeRate.Status.PUBLISHED)
    if bases is not None:
        qs = qs.filter(base_currency__in=list(bases))
    if quotes is not None:
        qs = qs.filter(quote_currency__in=list(quotes))
    if since is not None:
        qs = qs.filter(as_of__gte=since)
    if until is not None:
        qs = qs.filter(as_of__lte=until)
    window = Window(RowNumber(), partition_by=[F("base_currency"), F("quote_currency")],
                    order_by=[F("as_of").desc(), F("fetched_at").desc(), F("id").desc()])
    return qs.annotate(row=window).filter(row=1)


def latest_published(*, bases: Iterable[str] | None = None, quotes: Iterable[str] | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> dict[Pair, CachedRate]:
    """Return ``{(base, quote): CachedRate}`` of ``latest_published_rows`` (same arguments)."""
    from fx.services.cache import CachedRate, epoch

    rows = latest_published_rows(bases=bases, quotes=quotes, since=since, until=until)
    return {
        (r.base_currency, r.quote_currency): CachedRate(r.rate, epoch(r.as_of), r.provider)
        for r in rows.only("base_currency", "quote_currency", "rate", "as_of", "provider")
    }


def published_rates(bases: Iterable[str], *, since: datetime) -> tuple[dict[Pair, CachedRate], list[str]]:
    """Return the published rates of ``bases`` and the bases that had to be read from Postgres.

    Redis first (one round trip, whatever it holds); a base whose hash is gone is read from
    Postgres, its latest rate per pair no older than ``since``. Redis errors propagate.
    """
    from fx.services.cache import read_rates

    rates: dict[Pair, CachedRate] = {}
    missing = []
    for base, table in read_rates(bases).items():
        if not table:
            missing.append(base)
        rates.update({(base, quote): value for quote, value in table.items()})
    if missing:
        rates.update(latest_published(bases=missing, since=since))
    return rates, missing
