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

import sys
from typing import Any

from django.conf import settings

from broxiva.http import Response
from fx.errors import ProviderError, ProviderRateLimited
from fx.providers import ProviderRates, _json

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


def _error(resp: Response, data: Any) -> ProviderError | None:
    """Return the typed error for Fixer's ``success: false`` body (HTTP 200 included), else None."""
    if not isinstance(data, dict) or data.get("success") is True:
        return None
    err = data.get("error")
    # On a 200 any "error" member is Fixer's error; on another status only its error object.
    if not (data.get("success") is False or isinstance(err, dict) or (resp.status == 200 and "error" in data)):
        return None
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
    data = _json.fetch_json(sys.modules[__name__], url_setting="FIXER_URL", path="/latest", key_param="access_key",
                            symbols=symbols, timeout=timeout, error=_error)
    if not isinstance(data, dict):
        raise ProviderError(NAME, "response is not a JSON object", transient=True, code="bad_json")
    if data.get("success") is not True:
        raise ProviderError(NAME, "response without success:true", transient=True, code="bad_json")
    return _json.rates_from(NAME, data, expected_base=PIVOT)
