"""What the REST sources (WooCommerce, custom feeds) share: one guarded GET, errors by status.

Shop URLs and feeds come from tenants, so every call goes through ``broxiva.http`` with
``untrusted=True`` (the destination guard, a whole-call deadline, a size cap). Statuses map onto
the source contract: 401/403 → ``SourceAuthError`` with the source's own message, 429 →
``SourceThrottled`` (its ``Retry-After``), 5xx/timeouts → transient ``SourceError``, other 4xx →
permanent. Error texts never carry the URL's query string or credentials.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from broxiva import http
from broxiva.ratelimit import retry_after_seconds
from products.sources.base import SourceAuthError, SourceError, SourceThrottled


def get_json(
    label: str, url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
) -> tuple[Any, http.Response]:
    """GET ``url`` (guarded) and return its decoded JSON body and the response."""
    try:
        response = http.get(
            url,
            untrusted=True,
            params=params,
            headers=headers,
            timeout=settings.PRODUCT_SYNC_HTTP_TIMEOUT,
            max_bytes=settings.PRODUCT_SYNC_MAX_PAGE_BYTES,
        )
    except http.HttpError as exc:
        raise SourceError(f"{label}: {exc}", transient=exc.transient) from None
    if not response.ok:
        detail = _message(response)
        text = f"{label}: HTTP {response.status}" + (f": {detail}" if detail else "")
        if response.status in (401, 403):
            raise SourceAuthError(text)
        if response.status == 429:
            raise SourceThrottled(text, retry_after=retry_after_seconds(response.headers.get("Retry-After")))
        raise SourceError(text, transient=http.is_transient_status(response.status))
    try:
        return response.json(), response
    except ValueError:
        # A proxy's HTML error page with a 200: likely to pass, so worth another attempt.
        raise SourceError(f"{label}: the answer is not JSON ({response.content_type or 'no type'})") from None


def _message(response: http.Response) -> str:
    """The source's own error message (WooCommerce: ``{"code", "message"}``), short."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "errors", "title"):
            value = body.get(key)
            if value:
                text = value if isinstance(value, str) else json.dumps(value)
                return text[:300]
    return ""


def require_secure(url: str, *, what: str) -> None:
    """Refuse to send credentials over plain http, except to a loopback host.

    Loopback is only reachable when an operator allowed it (``OUTBOUND_ALLOWED_NETWORKS``: a
    local test shop); anywhere else plain http would put the shop's keys on the wire.
    """
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and loopback:
        return
    raise SourceError(
        f"{what}: the shop URL must use https (credentials are never sent over plain http)", transient=False
    )
