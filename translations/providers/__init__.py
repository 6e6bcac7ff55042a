"""The provider chain: Anthropic (preferred), then OpenAI; the pseudo-locale provider without keys.

``call_chain`` tries each configured provider in order and decides by the failure's kind:

- 429 (or our own pacing, ``ANTHROPIC_RPM``/``OPENAI_RPM``) → ``TranslationDeferred``: the job
  runs again after the wait without spending an attempt;
- overloaded/5xx/timeout/connection and bad answers → the next provider; transient if none is left;
- 401/403 → an alert naming the provider, then the next one; permanent when nobody served;
- 400 (a bad request) → permanent at once: the same request fails everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from broxiva import alerts
from broxiva.ratelimit import RateLimiter
from translations.errors import AUTH, PERMANENT, RATE_LIMITED, ProviderError, TranslationDeferred, TranslationFailed
from translations.providers.anthropic import AnthropicProvider
from translations.providers.base import Provider, Request, Result
from translations.providers.openai import OpenAIProvider
from translations.providers.pseudo import PseudoProvider

logger = logging.getLogger(__name__)

PROVIDERS: dict[str, type[Provider]] = {"anthropic": AnthropicProvider, "openai": OpenAIProvider}
PROVIDER_NAMES = (*PROVIDERS, "pseudo")

T = TypeVar("T")


def get(name: str) -> Provider:
    if name == "pseudo":
        return PseudoProvider()
    return PROVIDERS[name]()


def chain(preferred: str | None = None) -> list[Provider]:
    """Return the configured providers in order (``preferred`` first); the pseudo one when none is."""
    names = list(settings.TRANSLATION_PROVIDERS)
    if preferred in names:
        names.remove(preferred)
        names.insert(0, preferred)
    providers = [p for p in (get(n) for n in names) if p.configured()]
    return providers or [PseudoProvider()]


def pace(provider: Provider) -> None:
    """Take one slot of the provider's per-minute budget, or raise ``TranslationDeferred``."""
    rpm = int(getattr(settings, provider.rpm_setting, 0) or 0) if provider.rpm_setting else 0
    if rpm <= 0:
        return
    wait = RateLimiter(("llm", provider.name), limit=rpm, period_seconds=60, burst=max(rpm // 10, 0)).acquire()
    if wait > 0:
        raise TranslationDeferred(provider.name, wait, f"{provider.rpm_setting}={rpm}")


def _alert_auth(error: ProviderError) -> None:
    alerts.notify(
        f"Translations: {error.provider} refused our API key",
        f"The {error.provider} API answered {error.status} to a translation call: {error.message}. "
        f"Check its API key setting; until then the next provider in TRANSLATION_PROVIDERS serves.",
        severity="critical",
        source=f"translations-{error.provider}",
        details={"provider": error.provider, "status": error.status},
    )


def call_chain(providers: list[Provider], call: Callable[[Provider], T]) -> T:
    """Run ``call`` on each provider until one answers; raise what the failures add up to."""
    errors: list[ProviderError] = []
    for provider in providers:
        try:
            pace(provider)
            return call(provider)
        except ProviderError as exc:
            logger.warning(
                "translation provider failed provider=%s kind=%s status=%s: %s",
                exc.provider,
                exc.kind,
                exc.status,
                exc.message,
            )
            if exc.kind == RATE_LIMITED:
                raise TranslationDeferred(exc.provider, exc.retry_after or 30, exc.message) from None
            if exc.kind == PERMANENT:
                raise TranslationFailed([*errors, exc], transient=False) from None
            if exc.kind == AUTH:
                _alert_auth(exc)
            errors.append(exc)
    transient = any(e.transient for e in errors)
    raise TranslationFailed(errors, transient=transient)


def translate(providers: list[Provider], request: Request, *, max_tokens: int) -> Result:
    return call_chain(providers, lambda p: p.translate(request, max_tokens=max_tokens))


__all__ = ["PROVIDER_NAMES", "Provider", "Request", "Result", "call_chain", "chain", "get", "pace", "translate"]
