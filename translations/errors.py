"""The translations app's errors: one base class, ``transient`` on every one of them.

Messages are built by our own code from the provider's status and error type, never copied
from an SDK exception (whose text may echo request headers); ``broxiva.health.redact`` is
applied on top wherever a message is stored.
"""

from __future__ import annotations


class TranslationError(Exception):
    """Base of every translations error."""

    transient: bool = False


class InvalidTransition(TranslationError, ValueError):
    """A lifecycle move that the state machine does not allow."""

    def __init__(self, current: str, requested: str, *, reason: str = "") -> None:
        self.current = current
        self.requested = requested
        text = f"cannot move a translation from {current} to {requested}"
        super().__init__(text + (f": {reason}" if reason else ""))


class NeedsReview(InvalidTransition):
    """The row is flagged: a reviewer must clear it (edit the text and approve) first."""


class InvalidLocale(TranslationError, ValueError):
    pass


# Provider failure kinds, deciding what the chain does next.
RATE_LIMITED = "rate_limited"  # 429: defer the job for Retry-After
UNAVAILABLE = "unavailable"  # 529/overloaded, 5xx, timeout, connection: next provider, transient
AUTH = "auth"  # 401/403: next provider, alert; permanent when nobody serves
BAD_ANSWER = "bad_answer"  # not the JSON object, wrong count, cut off: transient for that call
PERMANENT = "permanent"  # 400 invalid request: the same call fails again


class ProviderError(TranslationError):
    """One provider call failed; ``kind`` says what the chain does next."""

    def __init__(
        self, provider: str, message: str, *, kind: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.provider = provider
        self.message = message
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.transient = kind in (RATE_LIMITED, UNAVAILABLE, BAD_ANSWER)
        status_text = f" {status}" if status else ""
        super().__init__(f"{provider}{status_text}: {message}")


class TranslationFailed(TranslationError):
    """No provider served; ``errors`` holds each provider's error in order."""

    def __init__(self, errors: list[ProviderError], *, transient: bool) -> None:
        self.errors = list(errors)
        self.transient = transient
        detail = "; ".join(str(e) for e in errors) or "no provider is configured"
        super().__init__(f"no provider could translate: {detail}")


class TranslationDeferred(TranslationError):
    """A provider is rate-limited (its 429 or our pacing): run again after ``retry_after`` s."""

    transient = True

    def __init__(self, provider: str, retry_after: float, reason: str) -> None:
        self.provider = provider
        self.retry_after = retry_after
        super().__init__(f"{provider} rate-limited ({reason}); retry after {retry_after:.0f}s")
