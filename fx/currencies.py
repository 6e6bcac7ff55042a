"""ISO 4217 currency codes and minor units, from the ``iso4217`` package (the ISO table itself).

Currencies here are the active ISO 4217 codes, plus the codes ISO withdrew recently that
providers and stored history still carry (``WITHDRAWN``: BGN left on 1 January 2026 when
Bulgaria joined the euro, yet every ECB feed before that date quotes it). Anything else a
provider sends (OXR's ``BTC``, ``CNH``, ``GGP``…) is rejected like any other unknown code rather
than stored under a name nothing else recognises.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from iso4217 import Currency

# Codes without minor units in ISO 4217 (gold, silver, SDR, test codes: "N.A.") are rounded to
# this many places: enough for a troy ounce of gold to the hundred-thousandth.
NO_MINOR_UNIT_PLACES = 6

# ISO 4217 list three (historic codes) since 2008, with their minor units.
WITHDRAWN: dict[str, int] = {
    "BGN": 2, "HRK": 2, "SLL": 2, "ZWL": 2, "CUC": 2, "VEF": 2, "MRO": 2, "STD": 2, "LTL": 2, "LVL": 2,
    "EEK": 2, "BYR": 0, "ZMK": 2, "SKK": 2, "CYP": 2, "MTL": 2,
}

_ACTIVE = {c.code: c for c in Currency}
CODES: frozenset[str] = frozenset(_ACTIVE) | frozenset(WITHDRAWN)


def is_currency(code: object) -> bool:
    """Return True if ``code`` is an active ISO 4217 code, exactly (upper case, three letters)."""
    return isinstance(code, str) and code in CODES


def normalize(code: object) -> str | None:
    """Return ``code`` upper-cased and stripped if it is an ISO 4217 code, else None."""
    if not isinstance(code, str):
        return None
    text = code.strip().upper()
    return text if text in CODES else None


def require(code: object) -> str:
    """Return ``code`` normalised like ``normalize``; raise ValueError when it is not ISO 4217."""
    normalised = normalize(code)
    if normalised is None:
        raise ValueError(f"{str(code)[:20]!r} is not an ISO 4217 currency code")
    return normalised


@cache
def minor_units(code: str) -> int:
    """Return the number of decimal places of ``code`` (JPY 0, USD 2, KWD 3)."""
    if code not in _ACTIVE:
        return WITHDRAWN[code]
    exponent = _ACTIVE[code].exponent
    return NO_MINOR_UNIT_PLACES if exponent is None else exponent


@cache
def quantum(code: str) -> Decimal:
    """Return the smallest amount of ``code`` as a ``Decimal`` exponent (``Decimal('0.01')`` for USD)."""
    return Decimal(1).scaleb(-minor_units(code))
