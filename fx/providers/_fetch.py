"""The providers' GET: the kernel's client (``broxiva.http``) with the FX settings and errors.

Kernel errors become ``ProviderError``s (``transient`` kept, except that a too-large body or a
redirect loop is transient here: the chain falls through to the next provider rather than
stopping). Messages name the failure, never the URL: the query string carries the API key.
Status codes are left to the provider (OXR and Fixer put their error codes in the body);
``raise_for_status`` is the generic mapping for what the provider does not recognise.
"""

from __future__ import annotations

from django.conf import settings

from broxiva import http
from broxiva.ratelimit import retry_after_seconds
from fx.errors import ProviderError, ProviderRateLimited

MAX_BYTES = 5 * 1024 * 1024  # a full OXR latest.json is ~5 KB; anything near this is not a rate table
ACCEPT = "application/json, application/xml, text/xml;q=0.9"


def get(provider: str, url: str, *, params: dict[str, str] | None = None,
        timeout: float | None = None) -> http.Response:
    """GET ``url``; return the response whatever its status, or raise a transient ``ProviderError``.

    ``timeout`` bounds the whole call (connect, headers and body), not just each socket read.
    """
    total = float(timeout if timeout is not None else settings.FX_HTTP_TIMEOUT)
    try:
        # Provider URLs are operator configuration: trusted, no destination guard.
        return http.get(url, params=params, headers={"Accept": ACCEPT}, timeout=total,
                        connect_timeout=min(float(settings.FX_HTTP_CONNECT_TIMEOUT), total), max_bytes=MAX_BYTES)
    except http.Timeout:
        raise ProviderError(provider, f"timed out after {total:g}s", transient=True, code="timeout") from None
    except http.ConnectionFailed as exc:
        raise ProviderError(provider, f"connection failed or response cut short ({exc.__class__.__name__})",
                            transient=exc.transient, code="connection") from None
    except http.TooLarge:
        raise ProviderError(provider, f"response larger than {MAX_BYTES} bytes", transient=True,
                            code="too_large") from None
    except http.HttpError as exc:
        raise ProviderError(provider, f"request failed ({exc.__class__.__name__})", transient=True) from None


def looks_like_html(resp: http.Response) -> bool:
    head = resp.body[:512].lstrip().lower()
    return resp.content_type == "text/html" or head.startswith((b"<!doctype html", b"<html"))


def title(resp: http.Response) -> str:
    """Return a short description of the body for error messages (an HTML page's <title>)."""
    text = resp.body[:4096].decode("utf-8", "replace")
    lower = text.lower()
    start, end = lower.find("<title>"), lower.find("</title>")
    if 0 <= start < end:
        return " ".join(text[start + 7 : end].split())[:120]
    return ""


def raise_for_status(provider: str, resp: http.Response) -> None:
    """Raise the generic typed error for a non-2xx response (or a 2xx HTML page); else return."""
    if resp.status == 429:
        raise ProviderRateLimited(provider, "HTTP 429 Too Many Requests",
                                  retry_after=retry_after_seconds(resp.headers.get("Retry-After")), code=429)
    html = looks_like_html(resp)
    heading = title(resp) if html else ""
    what = f"HTML page{': ' + heading if heading else ''}" if html else f"{len(resp.body)} bytes"
    if resp.status >= 400:
        raise ProviderError(provider, f"HTTP {resp.status} ({what})", transient=http.is_transient_status(resp.status),
                            code=resp.status)
    if resp.status >= 300:
        raise ProviderError(provider, f"unexpected HTTP {resp.status}", transient=True, code=resp.status)
    if html:
        raise ProviderError(provider, f"HTML page instead of the API's response ({what})", transient=True,
                            code="html")
