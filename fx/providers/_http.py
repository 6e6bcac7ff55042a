"""The one HTTP GET the providers use: timeouts on every call, a size cap, typed errors.

Network failures become transient ``ProviderError``s whose messages name the failure but never
the URL: requests' own exception texts include the query string, which carries the API key.
Status codes are left to the provider (OXR and Fixer put their error codes in the body);
``raise_for_status`` is the generic mapping for what the provider does not recognise.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

from broxiva.ratelimit import retry_after_seconds
from fx.errors import ProviderError, ProviderRateLimited

logger = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024  # a full OXR latest.json is ~5 KB; anything near this is not a rate table
USER_AGENT = "broxiva-fx/1"


@dataclass(frozen=True)
class Response:
    status: int
    headers: requests.structures.CaseInsensitiveDict
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def looks_like_html(self) -> bool:
        head = self.body[:512].lstrip().lower()
        return self.content_type == "text/html" or head.startswith((b"<!doctype html", b"<html"))

    def title(self) -> str:
        """Return a short description of the body for error messages (an HTML page's <title>)."""
        text = self.body[:4096].decode("utf-8", "replace")
        lower = text.lower()
        start, end = lower.find("<title>"), lower.find("</title>")
        if 0 <= start < end:
            return " ".join(text[start + 7 : end].split())[:120]
        return ""


def safe_url(url: str) -> str:
    """Return ``url`` without query string or credentials, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def get(provider: str, url: str, *, params: dict[str, str] | None = None, timeout: float | None = None) -> Response:
    """GET ``url``; return the response whatever its status, or raise a transient ``ProviderError``.

    ``timeout`` bounds the whole call (connect, headers and body), not just each socket read.
    """
    total = float(timeout if timeout is not None else settings.FX_HTTP_TIMEOUT)
    connect = min(float(settings.FX_HTTP_CONNECT_TIMEOUT), total)
    deadline = time.monotonic() + total
    started = time.monotonic()
    try:
        with requests.get(
            url, params=params, timeout=(connect, total), stream=True, allow_redirects=True,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json, application/xml, text/xml;q=0.9"},
        ) as resp:
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_content(65536):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise ProviderError(provider, f"response larger than {MAX_BYTES} bytes", transient=True)
                if time.monotonic() > deadline:
                    raise ProviderError(provider, f"timed out after {total:g}s reading the body", transient=True,
                                        code="timeout")
                chunks.append(chunk)
            result = Response(status=resp.status_code, headers=resp.headers, body=b"".join(chunks))
    except requests.Timeout:
        logger.warning("fx provider=%s url=%s timed out after %.3fs (limit %gs)",
                       provider, safe_url(url), time.monotonic() - started, total)
        raise ProviderError(provider, f"timed out after {total:g}s", transient=True, code="timeout") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError) as exc:
        # The exception text holds the full URL (and so the key): name only its class.
        logger.warning("fx provider=%s url=%s failed: %s", provider, safe_url(url), exc.__class__.__name__)
        raise ProviderError(provider, f"connection failed or response cut short ({exc.__class__.__name__})",
                            transient=True, code="connection") from None
    except requests.RequestException as exc:
        logger.warning("fx provider=%s url=%s request error: %s", provider, safe_url(url), exc.__class__.__name__)
        raise ProviderError(provider, f"request failed ({exc.__class__.__name__})", transient=True) from None
    logger.info("fx provider=%s url=%s status=%d bytes=%d in %.3fs", provider, safe_url(url), result.status,
                len(result.body), time.monotonic() - started)
    return result


def error_body(provider: str, resp: Response) -> object | None:
    """Return the parsed JSON of a non-2xx, non-HTML response, or None when it is not JSON."""
    if resp.looks_like_html():
        return None
    try:
        return parse_json(provider, resp)
    except ProviderError:
        return None


def raise_for_status(provider: str, resp: Response) -> None:
    """Raise the generic typed error for a non-2xx response (or a 2xx HTML page); else return."""
    if resp.status == 429:
        raise ProviderRateLimited(provider, "HTTP 429 Too Many Requests",
                                  retry_after=retry_after_seconds(resp.headers.get("Retry-After")), code=429)
    html = resp.looks_like_html()
    what = f"HTML page{': ' + resp.title() if resp.title() else ''}" if html else f"{len(resp.body)} bytes"
    if resp.status >= 500 or resp.status in (408, 425):
        raise ProviderError(provider, f"HTTP {resp.status} ({what})", transient=True, code=resp.status)
    if resp.status >= 400:
        raise ProviderError(provider, f"HTTP {resp.status} ({what})", transient=False, code=resp.status)
    if resp.status >= 300:
        raise ProviderError(provider, f"unexpected HTTP {resp.status}", transient=True, code=resp.status)
    if html:
        raise ProviderError(provider, f"HTML page instead of the API's response ({what})", transient=True,
                            code="html")


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
    if resp.looks_like_html():
        raise_for_status(provider, resp)
    try:
        # utf-8-sig: a byte order mark (some proxies and Windows tools add one) is not an error.
        return json.loads(resp.body.decode("utf-8-sig"), parse_float=Decimal, parse_constant=NonNumber,
                          object_pairs_hook=_object)
    except (UnicodeDecodeError, ValueError) as exc:
        logger.warning("fx provider=%s sent invalid JSON (HTTP %d, %d bytes): %s", provider, resp.status,
                       len(resp.body), str(exc)[:120])
        raise ProviderError(provider, f"invalid or truncated JSON (HTTP {resp.status}, {len(resp.body)} bytes)",
                            transient=True, code="bad_json") from None
