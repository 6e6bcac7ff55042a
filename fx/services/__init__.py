"""The fx app's services (a package: refresh, storage, cache and conversion are each ~200 lines).

Public API::

    rates_refresh(*, base=None, provider=None, targets=None, force=False) -> RefreshResult
    rates_confirm(*, ids) -> int                      # staff confirm held-back rates
    convert(amount, from_currency, to_currency, *, at=None) -> Decimal
    quote(from_currency, to_currency, *, at=None) -> Quote
"""

from __future__ import annotations

from fx.errors import RateUnavailable, UnknownCurrency
from fx.services.confirm import rates_confirm
from fx.services.rates import Quote, convert, quote, reset_local_cache
from fx.services.refresh import RefreshResult, rates_refresh

__all__ = [
    "Quote",
    "RateUnavailable",
    "RefreshResult",
    "UnknownCurrency",
    "convert",
    "quote",
    "rates_confirm",
    "rates_refresh",
    "reset_local_cache",
]
