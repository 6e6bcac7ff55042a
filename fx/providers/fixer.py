"""Fixer ``latest`` (``FIXER_URL``, ``FIXER_API_KEY``).

Success::

    {"success": true, "timestamp": 1716004800, "base": "EUR", "date": "2024-05-18",
     "rates": {"USD": 1.0866, …}}

Errors usually come back as **HTTP 200** with ``success: false``, and are errors all the same::

    {"success": false, "error": {"code": 101, "type": "missing_access_key", "info": "…"}}

Codes: 101 missing/invalid key, 102 inactive account, 103 invalid API function, 105 the plan
does not allow this (a base other than EUR, HTTPS on the free plan), 201 invalid base, 202
invalid symbols — permanent. 104 monthly usage limit reached — a rate limit that lasts until
the plan's month resets. 106 no rates available, and 5xx — transient. The free plan allows
only EUR as base, so EUR is the pivot and other bases are cross rates.
"""

from __future__ import annotations

from django.conf import settings

from fx.errors import ProviderError, ProviderNotConfigured, ProviderRateLimited
from fx.providers import ProviderRates, _http, _json

NAME = "fixer"
PIVOT = "EUR"
KEY_SETTING = "FIXER_API_KEY"
BUDGET_SETTING = "FIXER_MONTHLY_BUDGET"
TRANSIENT_CODES = {106}
RATE_LIMIT_CODES = {104}
# When the monthly allowance is spent Fixer does not say when it resets: look again in a day.
USAGE_LIMIT_RETRY_SECONDS = 24 * 3600


def configured() -> bool:
    return bool(settings.FIXER_API_KEY)


def _error(resp: _http.Response, data: dict) -> ProviderError:
    err = data.get("error")
    err = err if isinstance(err, dict) else {}
    code = err.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    kind = str(err.get("type") or "error")[:64]
    info = " ".join(str(err.get("info") or "").split())[:300]
    text = f"{code} {kind}: {info}" if info else f"{code} {kind}"
    if code in RATE_LIMIT_CODES:
        return ProviderRateLimited(NAME, text, retry_after=USAGE_LIMIT_RETRY_SECONDS, code=code)
    transient = code in TRANSIENT_CODES or resp.status >= 500
    return ProviderError(NAME, text, transient=transient, code=code if code is not None else kind)


def fetch(*, symbols: list[str] | None = None, timeout: float | None = None) -> ProviderRates:
    key = settings.FIXER_API_KEY
    if not key:
        raise ProviderNotConfigured(NAME, KEY_SETTING)
    params = {"access_key": key}
    if symbols:
        params["symbols"] = ",".join(sorted(set(symbols) | {PIVOT}))
    url = settings.FIXER_URL.rstrip("/") + "/latest"
    resp = _http.get(NAME, url, params=params, timeout=timeout)
    if resp.status != 200:
        data = _http.error_body(NAME, resp)
        if isinstance(data, dict) and (data.get("success") is False or isinstance(data.get("error"), dict)):
            raise _error(resp, data)
    _http.raise_for_status(NAME, resp)
    data = _http.parse_json(NAME, resp)
    if not isinstance(data, dict):
        raise ProviderError(NAME, "response is not a JSON object", transient=True, code="bad_json")
    if data.get("success") is not True:
        # HTTP 200 with success:false is Fixer's normal way of reporting an error.
        if "error" in data or data.get("success") is False:
            raise _error(resp, data)
        raise ProviderError(NAME, "response without success:true", transient=True, code="bad_json")
    return _json.rates_from(NAME, data, expected_base=PIVOT)
