"""Open Exchange Rates ``latest.json`` (``OPEN_EXCHANGE_RATES_URL``, ``OPEN_EXCHANGE_RATES_APP_ID``).

Success::

    {"disclaimer": "…", "license": "…", "timestamp": 1716004800, "base": "USD",
     "rates": {"AED": 3.6731, "EUR": 0.920245, …}}

Errors carry the HTTP status and a JSON body::

    {"error": true, "status": 401, "message": "invalid_app_id", "description": "Invalid App ID …"}

``missing_app_id``/``invalid_app_id`` (401), ``not_allowed`` (429: the plan lacks the feature —
not a rate limit), ``invalid_base`` (400), ``not_found`` (404) are permanent;
``access_restricted`` with status 429 is over-use (the monthly quota) and so a rate limit.
The free plan serves USD only, so USD is the pivot and other bases are cross rates; its 1,000
calls a month are paced by the service (``OPEN_EXCHANGE_RATES_MONTHLY_BUDGET``).
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings

from broxiva.http import Response
from broxiva.ratelimit import retry_after_seconds
from fx.errors import ProviderError, ProviderRateLimited
from fx.providers import ProviderRates, _json

NAME = "openexchangerates"
PIVOT = "USD"
KEY_SETTING = "OPEN_EXCHANGE_RATES_APP_ID"
BUDGET_SETTING = "OPEN_EXCHANGE_RATES_MONTHLY_BUDGET"
PERMANENT = {"missing_app_id", "invalid_app_id", "not_allowed", "invalid_base", "not_found", "invalid_symbols"}


def configured() -> bool:
    return bool(settings.OPEN_EXCHANGE_RATES_APP_ID)


def _error(resp: Response, data: Any) -> ProviderError | None:
    """Return the typed error for OXR's ``{"error": true, …}`` body (any status), else None."""
    if not (isinstance(data, dict) and data.get("error")):
        return None
    message = str(data.get("message") or "error")[:64]
    description = " ".join(str(data.get("description") or "").split())[:300]
    text = f"HTTP {resp.status} {message}: {description}" if description else f"HTTP {resp.status} {message}"
    if message == "access_restricted" and resp.status == 429:
        wait = retry_after_seconds(resp.headers.get("Retry-After"), default=3600)
        return ProviderRateLimited(NAME, text, retry_after=wait, code=message)
    if message in PERMANENT:
        return ProviderError(NAME, text, transient=False, code=message)
    if resp.status == 429:
        wait = retry_after_seconds(resp.headers.get("Retry-After"))
        return ProviderRateLimited(NAME, text, retry_after=wait, code=message)
    return ProviderError(NAME, text, transient=resp.status >= 500, code=message)


def fetch(*, symbols: list[str] | None = None, timeout: float | None = None) -> ProviderRates:
    data = _json.fetch_json(sys.modules[__name__], url_setting="OPEN_EXCHANGE_RATES_URL", path="/latest.json",
                            key_param="app_id", symbols=symbols, timeout=timeout, error=_error)
    return _json.rates_from(NAME, data, expected_base=PIVOT)
