"""Shared reading of the JSON providers' success bodies (OXR and Fixer share the shape)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fx.currencies import is_currency
from fx.errors import ProviderError
from fx.providers import ProviderRates, check_as_of, collect_rates


def rates_from(provider: str, data: Any, *, expected_base: str) -> ProviderRates:
    """Build ``ProviderRates`` from ``{"timestamp", "base", "rates": {code: number}}``.

    A body without these (a proxy's JSON, a half-written object) is a transient error: the next
    call may well get the real thing.
    """
    if not isinstance(data, dict):
        raise ProviderError(provider, "response is not a JSON object", transient=True, code="bad_json")
    base = data.get("base")
    if not is_currency(base):
        raise ProviderError(provider, f"response has no valid base currency ({str(base)[:10]!r})", transient=True,
                            code="bad_json")
    if base != expected_base:
        raise ProviderError(provider, f"asked for base {expected_base}, got {base}", transient=False,
                            code="base_mismatch")
    stamp = data.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, Decimal)) or stamp <= 0:
        raise ProviderError(provider, "response has no valid timestamp", transient=True, code="bad_json")
    try:
        as_of = datetime.fromtimestamp(int(stamp), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ProviderError(provider, f"timestamp {stamp} is out of range", transient=True, code="bad_json") from None
    check_as_of(provider, as_of)
    raw = data.get("rates")
    if not isinstance(raw, dict):
        raise ProviderError(provider, "response has no rates object", transient=True, code="bad_json")
    rates, rejected = collect_rates(provider, getattr(raw, "pairs", None) or raw.items())
    rates.pop(base, None)
    if not rates:
        raise ProviderError(provider, "response has no usable rates", transient=True, code="no_rates")
    return ProviderRates(provider=provider, base=base, as_of=as_of, rates=rates, rejected=rejected)
