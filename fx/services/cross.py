"""Cross rates: every configured base from one provider response, in ``Decimal``.

A provider quotes ``rate(P→q)`` for its pivot ``P``. For another base ``B``:
``rate(B→q) = rate(P→q) / rate(P→B)`` and ``rate(B→P) = 1 / rate(P→B)``, each divided with 34
significant digits (``CROSS_CONTEXT``, IEEE decimal128) and then rounded half-even to 20
decimal places (``STORED_PLACES``), the column's scale. So a stored cross rate differs from the
exact quotient by at most 5e-21: at least 12 significant digits for any rate down to 1e-8,
and more for every real currency pair (0.78225657095527332965 for GBP per USD).
"""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_EVEN, Context, Decimal

from fx.providers import MAX_RATE, ProviderRates

CROSS_CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN)
# Quantizing to 20 places a rate with 18 integer digits needs 38 digits of precision.
STORE_CONTEXT = Context(prec=40, rounding=ROUND_HALF_EVEN)
STORED_PLACES = Decimal("1e-20")

logger = logging.getLogger(__name__)


def stored(rate: Decimal) -> Decimal:
    """Return ``rate`` rounded to the stored scale (20 places, half-even)."""
    return rate.quantize(STORED_PLACES, context=STORE_CONTEXT)


def rebase(
    response: ProviderRates, bases: list[str], targets: list[str] | None = None
) -> tuple[dict[str, dict[str, Decimal]], dict[str, str], dict[str, str]]:
    """Return ``({base: {quote: rate}}, {base: why it is missing}, {"B/q": why refused})`` for ``bases``.

    ``targets`` limits the quotes (every quote the provider sent when None). A base the
    provider does not quote cannot be derived and is reported, not guessed. A cross rate of
    ``MAX_RATE`` or more (a rate the guards let through for the pivot, divided by a base worth
    less than the pivot) would not fit the column: that one pair is refused, not the whole fetch.
    """
    pivot = response.base
    pivot_rates = dict(response.rates)
    pivot_rates[pivot] = Decimal(1)
    wanted = None if targets is None else set(targets)
    result: dict[str, dict[str, Decimal]] = {}
    missing: dict[str, str] = {}
    refused: dict[str, str] = {}
    for base in bases:
        through = pivot_rates.get(base)
        if through is None:
            missing[base] = f"{response.provider} does not quote {base}"
            continue
        table: dict[str, Decimal] = {}
        for quote, rate in pivot_rates.items():
            if quote == base or (wanted is not None and quote not in wanted):
                continue
            value = rate if base == pivot else CROSS_CONTEXT.divide(rate, through)
            if value < MAX_RATE:  # quantize() cannot represent a quotient of 1e20 or more at all
                value = stored(value)
            if value >= MAX_RATE:  # ... and rounding may bring one just under 1e18 up to it
                refused[f"{base}/{quote}"] = "cross rate out of range"
                continue
            if value > 0:  # a quotient under 5e-21 rounds to zero: no usable rate
                table[quote] = value
        if table:
            result[base] = table
        else:
            missing[base] = f"{response.provider} sent none of the requested currencies for {base}"
    if refused:
        logger.warning("fx provider=%s refused %d cross rates out of range: %s", response.provider, len(refused),
                       ", ".join(sorted(refused)[:20]))
    return result, missing, refused
