"""Map the official SDKs' exceptions onto our kinds, with messages we build ourselves.

Both SDKs (Stainless-generated) raise ``APIStatusError`` subclasses carrying ``status_code``,
``response`` and the parsed ``body``; ``APITimeoutError`` and ``APIConnectionError`` for the
network. The message we keep is the status, the API's error type and its message, with the
key masked (``broxiva.health.redact`` on top): never ``str(exc)``, which may show a request.
"""

from __future__ import annotations

from typing import Any

from broxiva.health import redact
from broxiva.ratelimit import retry_after_seconds
from translations.errors import AUTH, PERMANENT, RATE_LIMITED, UNAVAILABLE, ProviderError


def _error_fields(body: Any) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("type") or error.get("code") or ""), str(error.get("message") or "")
    return "", ""


def scrub(text: str, secret: str) -> str:
    if secret:
        text = text.replace(secret, "[hidden]")
    return redact(text)[:300]


def from_status(provider: str, status: int, body: Any, headers: Any, secret: str) -> ProviderError:
    kind_name, message = _error_fields(body)
    words = scrub(f"{kind_name}: {message}" if kind_name else (message or "HTTP error"), secret)
    if status == 429:
        wait = retry_after_seconds(headers.get("retry-after") if headers is not None else None, default=30)
        return ProviderError(provider, f"rate limited ({words})", kind=RATE_LIMITED, status=status, retry_after=wait)
    if status in (401, 403):
        return ProviderError(provider, f"the API key was refused ({words})", kind=AUTH, status=status)
    if status in (408, 409) or status >= 500:
        return ProviderError(provider, f"unavailable ({words})", kind=UNAVAILABLE, status=status)
    return ProviderError(provider, f"the request was refused ({words})", kind=PERMANENT, status=status)


def from_sdk(provider: str, exc: Exception, sdk: Any, secret: str) -> ProviderError:
    """Translate one SDK exception (``sdk`` is the ``anthropic`` or ``openai`` module)."""
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderError(provider, "the call timed out", kind=UNAVAILABLE)
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderError(provider, "could not connect", kind=UNAVAILABLE)
    if isinstance(exc, sdk.APIStatusError):
        return from_status(provider, exc.status_code, exc.body, exc.response.headers, secret)
    return ProviderError(provider, f"unexpected {type(exc).__name__}", kind=UNAVAILABLE)
