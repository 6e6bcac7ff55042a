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

from django.conf import settings

from broxiva.ratelimit import retry_after_seconds
from fx.errors import ProviderError, ProviderNotConfigured, ProviderRateLimited
from fx.providers import ProviderRates, _http, _json

NAME = "openexchangerates"
PIVOT = "USD"
KEY_SETTING = "OPEN_EXCHANGE_RATES_APP_ID"
BUDGET_SETTING = "OPEN_EXCHANGE_RATES_MONTHLY_BUDGET"
PERMANENT = {"missing_app_id", "invalid_app_id", "not_allowed", "invalid_base", "not_found", "invalid_symbols"}


def configured() -> bool:
    return bool(settings.OPEN_EXCHANGE_RATES_APP_ID)


def _error(resp: _http.Response, data: object) -> ProviderError:
    if not (isinstance(data, dict) and data.get("error")):
        return ProviderError(NAME, f"HTTP {resp.status} without rates", transient=resp.status >= 500,
                             code=resp.status)
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
    app_id = settings.OPEN_EXCHANGE_RATES_APP_ID
    if not app_id:
        raise ProviderNotConfigured(NAME, KEY_SETTING)
    params = {"app_id": app_id}
    if symbols:
        params["symbols"] = ",".join(sorted(set(symbols) | {PIVOT}))
    url = settings.OPEN_EXCHANGE_RATES_URL.rstrip("/") + "/latest.json"
    resp = _http.get(NAME, url, params=params, timeout=timeout)
    if resp.status != 200:
        data = _http.error_body(NAME, resp)
        if isinstance(data, dict) and data.get("error"):
            raise _error(resp, data)
    _http.raise_for_status(NAME, resp)
    data = _http.parse_json(NAME, resp)
    if isinstance(data, dict) and data.get("error"):
        raise _error(resp, data)
    return _json.rates_from(NAME, data, expected_base=PIVOT)
