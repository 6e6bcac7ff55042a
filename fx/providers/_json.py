"""What the JSON providers (OXR and Fixer) share: the call, the parsing and the success body.

The two differ only in their key's name, their path and how their errors look; each module
keeps its own error rules (``is_error``/``error``) and this module does the rest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from broxiva.http import Response
from fx.currencies import is_currency
from fx.errors import ProviderError, ProviderNotConfigured
from fx.providers import ProviderRates, _fetch, check_as_of, collect_rates

logger = logging.getLogger(__name__)


class JsonObject(dict):
    """A parsed JSON object; ``pairs`` keeps every member, in order, when a key came twice
    (``json`` would silently keep the last one)."""

    pairs: list[tuple[str, Any]] | None = None


def _object(pairs: list[tuple[str, Any]]) -> JsonObject:
    obj = JsonObject(pairs)
    if len(obj) != len(pairs):
        obj.pairs = pairs
    return obj


class NonNumber:
    """What a JSON ``NaN``/``Infinity`` parses to: kept as a value so the entry, not the whole
    response, is rejected."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def parse_json(provider: str, resp: Response) -> Any:
    """Parse a JSON body with every number as ``Decimal`` (never ``float``); truncated → transient."""
    if _fetch.looks_like_html(resp):
        _fetch.raise_for_status(provider, resp)
    try:
        # utf-8-sig: a byte order mark (some proxies and Windows tools add one) is not an error.
        return json.loads(resp.body.decode("utf-8-sig"), parse_float=Decimal, parse_constant=NonNumber,
                          object_pairs_hook=_object)
    except (UnicodeDecodeError, ValueError) as exc:
        logger.warning("fx provider=%s sent invalid JSON (HTTP %d, %d bytes): %s", provider, resp.status,
                       len(resp.body), str(exc)[:120])
        raise ProviderError(provider, f"invalid or truncated JSON (HTTP {resp.status}, {len(resp.body)} bytes)",
                            transient=True, code="bad_json") from None


def error_body(provider: str, resp: Response) -> object | None:
    """Return the parsed JSON of a non-2xx, non-HTML response, or None when it is not JSON."""
    if _fetch.looks_like_html(resp):
        return None
    try:
        return parse_json(provider, resp)
    except ProviderError:
        return None


def fetch_json(
    module: Any, *, url_setting: str, path: str, key_param: str, symbols: list[str] | None, timeout: float | None,
    error: Callable[[Response, Any], ProviderError | None],
) -> Any:
    """Call a keyed JSON provider and return its parsed body; raise its own error when it sent one.

    ``error(response, body)`` returns the typed ``ProviderError`` for a body that is the
    provider's error object (whatever the status), or None for anything else.
    """
    key = getattr(settings, module.KEY_SETTING)
    if not key:
        raise ProviderNotConfigured(module.NAME, module.KEY_SETTING)
    params = {key_param: key}
    if symbols:
        params["symbols"] = ",".join(sorted(set(symbols) | {module.PIVOT}))
    url = getattr(settings, url_setting).rstrip("/") + path
    resp = _fetch.get(module.NAME, url, params=params, timeout=timeout)
    if resp.status != 200:
        own = error(resp, error_body(module.NAME, resp))
        if own is not None:
            raise own
    _fetch.raise_for_status(module.NAME, resp)
    data = parse_json(module.NAME, resp)
    own = error(resp, data)
    if own is not None:
        raise own
    return data


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
