"""The fx app's errors: one base class, and ``transient`` on every one of them.

``transient=True`` means "the same call may succeed later" (timeout, 5xx, an HTML error page,
a truncated body, 429): retry, or fall through to the next provider. ``transient=False`` means
"asking again changes nothing" (bad key, invalid base, a plan that does not allow the call):
fail at once with the provider's own message, burn no retries.

Messages never contain a URL's query string or a key: requests puts the full URL (with
``app_id``/``access_key``) in its exception texts, so provider code builds its own messages.
"""

from __future__ import annotations

from datetime import datetime


class FxError(Exception):
    """Base of every fx error."""

    transient: bool = False


class ProviderError(FxError):
    """One provider call failed. ``code`` is the provider's own error code/name when it sent one."""

    def __init__(self, provider: str, message: str, *, transient: bool, code: str | int | None = None) -> None:
        self.provider = provider
        self.message = message
        self.transient = transient
        self.code = code
        kind = "transient" if transient else "permanent"
        code_text = f" {code}" if code is not None else ""
        super().__init__(f"{provider} error{code_text} ({kind}): {message}")


class ProviderRateLimited(ProviderError):
    """The provider said 429 (or our own budget for it is spent): wait ``retry_after`` seconds."""

    def __init__(self, provider: str, message: str, *, retry_after: float, code: str | int | None = None) -> None:
        self.retry_after = max(float(retry_after), 0.0)
        super().__init__(provider, f"{message} (retry after {self.retry_after:.0f}s)", transient=True, code=code)


class ProviderNotConfigured(ProviderError):
    """A provider that needs a key was asked for explicitly, and its key is not set."""

    def __init__(self, provider: str, setting: str) -> None:
        super().__init__(provider, f"{setting} is not set", transient=False, code="not_configured")


class RefreshFailed(FxError):
    """No provider in the chain served: ``errors`` holds each provider's own error, in order."""

    def __init__(self, errors: list[ProviderError], *, transient: bool | None = None) -> None:
        self.errors = list(errors)
        self.transient = all(e.transient for e in errors) if transient is None else transient
        detail = "; ".join(str(e) for e in errors) or "no provider is configured"
        super().__init__(f"FX refresh stored nothing: {detail}")


class RefreshDeferred(RefreshFailed):
    """Every provider that could serve is rate-limited: try again after ``retry_after`` seconds."""

    def __init__(self, errors: list[ProviderError], retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(errors, transient=True)


class RefreshInProgress(FxError):
    """Another process holds the refresh lock and did not finish within our wait."""

    transient = True


class RateUnavailable(FxError, LookupError):
    """No usable rate for a pair: none stored, or the latest one is stale (``fx.publication``).

    A stale rate is ``transient``: the refresh is behind, and a job converting prices retries
    with its queue's backoff until a newer rate is published. A pair the system never had a
    rate for (or an unknown code) is permanent: asking again changes nothing.
    """

    def __init__(self, from_currency: str, to_currency: str, *, as_of: datetime | None = None,
                 age_hours: float | None = None, reason: str = "") -> None:
        self.from_currency = from_currency
        self.to_currency = to_currency
        self.as_of = as_of
        self.age_hours = age_hours
        self.transient = as_of is not None
        pair = f"{from_currency}/{to_currency}"
        if age_hours is not None and as_of is not None:
            text = f"rate {pair} is stale: {age_hours:.1f} h old (as of {as_of.isoformat()})"
        else:
            text = f"no rate for {pair}"
        super().__init__(text + (f"; {reason}" if reason else ""))


class UnknownCurrency(RateUnavailable, ValueError):
    """A currency code that is not an active ISO 4217 code."""

    def __init__(self, code: object, *, pair: tuple[str, str] | None = None) -> None:
        self.code = code
        from_currency, to_currency = pair or (str(code), str(code))
        super().__init__(from_currency, to_currency, reason=f"{code!r} is not an ISO 4217 currency code")


class InvalidAmount(FxError, ValueError):
    """An amount ``convert()`` cannot take: not a number, not finite, or out of range."""

    def __init__(self, amount: object, problem: str, *, allowed: str) -> None:
        self.amount = amount
        self.allowed = allowed
        shown = repr(amount) if isinstance(amount, str) else str(amount)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        super().__init__(f"amount {shown} {problem}; {allowed}")
