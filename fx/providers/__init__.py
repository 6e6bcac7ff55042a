"""Exchange-rate providers: one module per external API, each knowing only its wire format.

Every provider module exposes ``NAME``, ``PIVOT`` (the base its response is quoted in),
``configured()`` (its key is set; read at call time so a settings override takes effect) and
``fetch(*, symbols, timeout)`` returning ``ProviderRates`` or raising a ``ProviderError``
(``transient`` says whether to retry or fall through).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import ModuleType
from typing import Any

from fx.currencies import is_currency
from fx.errors import ProviderError

logger = logging.getLogger(__name__)

# A rate this large or larger is nonsense (and would not fit the column's 18 integer digits).
MAX_RATE = Decimal("1e18")
# How far ahead of our clock a provider's timestamp may be (clock skew). A later one is a broken
# response: stored, it would outrank every correct rate fetched until that date.
MAX_FUTURE = timedelta(hours=1)


@dataclass(frozen=True)
class ProviderRates:
    """One provider response: ``rates[q]`` units of ``q`` per 1 ``base``, as of ``as_of`` (UTC)."""

    provider: str
    base: str
    as_of: datetime
    rates: dict[str, Decimal]
    # Entries the guards refused: currency code (or the raw key) → why.
    rejected: dict[str, str] = field(default_factory=dict)


def check_rate(code: Any, value: Any, *, text: bool = False) -> tuple[Decimal | None, str | None]:
    """Return ``(rate, None)`` for a usable entry or ``(None, reason)`` for one to reject.

    ``value`` is a number as the wire gave it: a ``Decimal`` or an ``int`` from JSON (parsed
    with ``parse_float=Decimal``), or with ``text=True`` the text of an XML attribute. Booleans,
    strings in JSON, NaN, infinities, zero and negative rates are refused.
    """
    if not is_currency(code):
        return None, "unknown currency code"
    if isinstance(value, bool) or value is None:
        return None, "non-numeric rate"
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str) and text:
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            return None, "non-numeric rate"
    if not isinstance(value, Decimal) or not value.is_finite():
        return None, "non-numeric rate"
    if value <= 0:
        return None, "zero or negative rate"
    if value >= MAX_RATE:
        return None, "rate out of range"
    return value, None


def check_as_of(provider: str, as_of: datetime) -> datetime:
    """Return ``as_of``, or raise a transient ``ProviderError`` if it lies in the future."""
    if as_of > datetime.now(UTC) + MAX_FUTURE:
        raise ProviderError(provider, f"response is dated {as_of.isoformat()}, in the future", transient=True,
                            code="future_timestamp")
    return as_of


def collect_rates(provider: str, entries: Any, *, text: bool = False) -> tuple[dict[str, Decimal], dict[str, str]]:
    """Split ``(code, value)`` pairs into accepted rates and rejected entries (logged)."""
    rates: dict[str, Decimal] = {}
    rejected: dict[str, str] = {}
    conflicting: set[str] = set()
    for code, value in entries:
        rate, reason = check_rate(code, value, text=text)
        if rate is None:
            rejected[str(code)[:16]] = reason or "rejected"
        elif code in conflicting:
            continue
        elif code in rates and rates[code] != rate:
            # A response that gives two rates for one currency contradicts itself: trust neither.
            conflicting.add(code)
            del rates[code]
            rejected[code] = "listed twice with different rates"
        else:
            rates[code] = rate
    if rejected:
        logger.warning("fx provider=%s rejected %d entries: %s", provider, len(rejected),
                       ", ".join(f"{k} ({v})" for k, v in sorted(rejected.items())[:20]))
    return rates, rejected


def registry() -> dict[str, ModuleType]:
    """Return the provider modules by name, in no particular order."""
    from fx.providers import ecb, fixer, openexchangerates

    return {m.NAME: m for m in (openexchangerates, fixer, ecb)}


# The names accepted in FX_PROVIDERS and the job payload (the seed's spelling).
PROVIDER_NAMES: tuple[str, ...] = ("openexchangerates", "fixer", "ecb")


def get(name: str) -> ModuleType:
    try:
        return registry()[name]
    except KeyError:
        raise ValueError(f"unknown FX provider {name!r}; known: {', '.join(PROVIDER_NAMES)}") from None
