"""``rates_refresh``: one provider call → snapshots for every configured base → cache.

Order of business: a fresh cache answers without a call (unless forced); the refresh lock
(``lock:fx:refresh``) keeps concurrent refreshes from calling twice — a caller that waited for
it re-reads the cache and returns what the other refresh stored; the provider chain is tried
in order (transient failures retried ``FX_PROVIDER_RETRIES`` times, then the next provider; a
permanent failure stops everything; a 429 or a spent budget skips to the next provider);
snapshots are appended (``store``) and the published ones written to Redis (``cache``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from broxiva.locks import LockNotAcquired, with_lock
from broxiva.ratelimit import RateLimiter
from fx import providers
from fx.errors import (
    ProviderError,
    ProviderNotConfigured,
    ProviderRateLimited,
    RefreshDeferred,
    RefreshFailed,
    RefreshInProgress,
)
from fx.providers import ProviderRates
from fx.services import cache
from fx.services.cross import rebase
from fx.services.store import Held, store_snapshots

logger = logging.getLogger(__name__)

LOCK_RESOURCE = "fx:refresh"
# The budget is paced over 31 days, so no calendar month can exceed it.
BUDGET_PERIOD_SECONDS = 31 * 24 * 3600


@dataclass
class RefreshResult:
    """What a refresh did; ``as_dict()`` is the job's small JSON result."""

    status: str  # "stored" or "cached"
    provider: str | None = None
    as_of: datetime | None = None
    bases: list[str] = field(default_factory=list)
    stored: dict[str, int] = field(default_factory=dict)
    held: list[Held] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # provider errors the chain fell through
    rates: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # what was fetched (not in as_dict)

    @property
    def total_stored(self) -> int:
        return sum(self.stored.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "provider": self.provider,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "bases": self.bases,
            "stored": self.stored,
            "held": [h.as_dict() for h in self.held],
            "confirmed": self.confirmed,
            "rejected": self.rejected,
            "unavailable": self.unavailable,
            "skipped": self.skipped,
        }


def budget_limiter(module: Any) -> RateLimiter | None:
    """Return the limiter pacing a provider's monthly call budget, or None when unlimited."""
    setting = getattr(module, "BUDGET_SETTING", None)
    budget = int(getattr(settings, setting, 0) or 0) if setting else 0
    if budget <= 0:
        return None
    # GCRA admits burst + 1 at once and then one per interval: limit = budget - burst - 1 keeps
    # any 31-day window at or under the budget. A tenth of it as burst lets forced refreshes and
    # retries run without waiting; the rest is paced (1,000: one call per ~50 min, under the
    # hourly cadence that the 1-hour cache gives the 15-minute schedule).
    burst = min(budget // 10, budget - 1)
    return RateLimiter(f"fx:{module.NAME}:budget", max(budget - burst - 1, 1), BUDGET_PERIOD_SECONDS, burst=burst)


def _chain(provider: str | None) -> list[tuple[Any, bool]]:
    """Return ``[(module, explicit)]``: the one asked for, or the configured chain."""
    if provider is not None:
        return [(providers.get(provider), True)]
    return [(providers.get(name), False) for name in settings.FX_PROVIDERS]


def _call_budget(remaining: float, reserve: float, later: int, *, retry: bool) -> float:
    """Return the seconds one provider call may take.

    A first attempt gets its ``FX_HTTP_TIMEOUT``, cut so that the providers after it keep one
    full call each (``reserve``), but never below a fair share of what is left; a retry only
    gets what the later providers do not need: a slow primary cannot eat the ECB's turn.
    """
    timeout = float(settings.FX_HTTP_TIMEOUT)
    spare = remaining - reserve
    if retry:
        return min(timeout, spare)
    return min(timeout, max(spare, remaining / (later + 1)))


def fetch_rates(
    *, provider: str | None = None, symbols: list[str] | None = None, force: bool = False,
    deadline: float | None = None,
) -> tuple[ProviderRates, list[str]]:
    """Return one provider's response and the errors of those the chain fell through.

    The whole chain ends by ``deadline`` (``time.monotonic()``; default ``FX_REFRESH_DEADLINE``
    from now), each call bounded during its read by the kernel's HTTP client. A provider that
    answered 429 is skipped until its ``Retry-After`` has passed, unless ``force`` (an
    operator's "fetch now"); the monthly budgets always apply.

    Raise ``RefreshFailed`` (permanent when a provider's error is, or nothing is configured),
    or ``RefreshDeferred`` when every failure was a rate limit.
    """
    if deadline is None:
        deadline = time.monotonic() + float(settings.FX_REFRESH_DEADLINE)
    retries = int(settings.FX_PROVIDER_RETRIES)
    errors: list[ProviderError] = []
    chain = _chain(provider)
    for index, (module, explicit) in enumerate(chain):
        name = module.NAME
        if not module.configured():
            if explicit:
                raise RefreshFailed([ProviderNotConfigured(name, module.KEY_SETTING or name)])
            logger.debug("fx provider=%s skipped: not configured", name)
            continue
        cooling = 0.0 if force else cache.cooldown_remaining(name)
        if cooling > 0:
            errors.append(ProviderRateLimited(name, "still cooling down after a 429", retry_after=cooling))
            continue
        limiter = budget_limiter(module)
        wait = limiter.acquire() if limiter is not None else 0.0
        if wait > 0:
            errors.append(ProviderRateLimited(name, f"monthly call budget ({module.BUDGET_SETTING}) paced",
                                              retry_after=wait, code="budget"))
            logger.info("fx provider=%s skipped: budget wait=%.0fs", name, wait)
            continue
        later = sum(1 for m, _ in chain[index + 1:] if m.configured())
        reserve = later * float(settings.FX_HTTP_TIMEOUT)
        last: ProviderError | None = None
        for attempt in range(1, retries + 2):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                errors.append(ProviderError(name, "refresh deadline passed", transient=True, code="deadline"))
                return _give_up(errors)
            budget = _call_budget(remaining, reserve, later, retry=attempt > 1)
            if attempt > 1 and budget < min(1.0, float(settings.FX_HTTP_TIMEOUT)):
                logger.warning("fx provider=%s no retry: the next providers need the %.1fs left", name, remaining)
                errors.extend([last] if last is not None else [])
                break
            try:
                response = module.fetch(symbols=symbols, timeout=budget)
            except ProviderRateLimited as exc:
                cache.start_cooldown(name, exc.retry_after)
                logger.warning("fx provider=%s rate limited: %s", name, exc.message)
                errors.append(exc)
                break
            except ProviderError as exc:
                if not exc.transient:
                    logger.error("fx provider=%s permanent error: %s", name, exc.message)
                    errors.append(exc)
                    raise RefreshFailed(errors, transient=False) from None
                logger.warning("fx provider=%s transient error attempt=%d/%d: %s", name, attempt, retries + 1,
                               exc.message)
                last = exc
                if attempt > retries:
                    errors.append(exc)
                    break
                time.sleep(max(0.0, min(float(settings.FX_PROVIDER_RETRY_DELAY) * 2 ** (attempt - 1),
                                        deadline - time.monotonic())))
            else:
                return response, [str(e) for e in errors]
    return _give_up(errors)


def _give_up(errors: list[ProviderError]) -> Any:
    if not errors:
        raise RefreshFailed([], transient=False)
    limited = [e for e in errors if isinstance(e, ProviderRateLimited)]
    if len(limited) == len(errors):
        raise RefreshDeferred(errors, min(e.retry_after for e in limited))
    raise RefreshFailed(errors)


def _bases(base: str | None) -> list[str]:
    ordered = ([base] if base else []) + list(settings.FX_BASE_CURRENCIES)
    return list(dict.fromkeys(ordered))


def _cached_result(bases: list[str], targets: list[str] | None, provider: str | None,
                   since: float | None) -> RefreshResult | None:
    """Return a "cached" result if every base was refreshed (since ``since``) and holds ``targets``."""
    markers = cache.read_markers(bases, targets or ())
    found = []
    for base in bases:
        marker, complete = markers[base]
        if marker is None or not complete or (provider and marker.provider != provider):
            return None
        if since is not None and marker.fetched_at < since:
            return None
        found.append(marker)
    newest = max(found, key=lambda m: m.as_of)
    return RefreshResult(status="cached", provider=newest.provider,
                         as_of=datetime.fromtimestamp(newest.as_of, tz=UTC), bases=bases)


def rates_refresh(
    *, base: str | None = None, provider: str | None = None, targets: list[str] | None = None, force: bool = False
) -> RefreshResult:
    """Refresh the rates of ``base`` and of every ``FX_BASE_CURRENCIES`` base from one provider call.

    ``provider`` forces one provider (no chain); ``targets`` limits the quote currencies;
    ``force`` ignores a fresh cache. Raise ``RefreshFailed``/``RefreshDeferred`` when nothing
    could be fetched and ``RefreshInProgress`` when another refresh kept the lock too long.
    """
    bases = _bases(base)
    if not force:
        cached = _cached_result(bases, targets, provider, None)
        if cached is not None:
            logger.info("fx refresh bases=%s skipped: cache is fresh (provider=%s)", ",".join(bases), cached.provider)
            return cached
    waiting_since = time.time()
    # FX_REFRESH_DEADLINE bounds the whole refresh, the wait for the lock included, so the job
    # ends under its queue's timeout: a waiter whose turn comes late gets only the time left.
    deadline = time.monotonic() + float(settings.FX_REFRESH_DEADLINE)
    hold = float(settings.FX_REFRESH_DEADLINE) + 20
    wait = float(settings.FX_REFRESH_DEADLINE)
    try:
        with with_lock(LOCK_RESOURCE, ttl_seconds=hold, wait_time_ms=int(wait * 1000), keep_alive=True):
            # A refresh that finished while we waited has just done our work: its data is newer
            # than our request, forced or not.
            done = _cached_result(bases, targets, provider, waiting_since)
            if done is not None:
                logger.info("fx refresh bases=%s served by a concurrent refresh", ",".join(bases))
                return done
            return _refresh_locked(bases, provider, targets, force, deadline)
    except LockNotAcquired:
        raise RefreshInProgress("another FX refresh holds the lock; it will store the rates") from None


def _refresh_locked(bases: list[str], provider: str | None, targets: list[str] | None, force: bool,
                    deadline: float) -> RefreshResult:
    symbols = sorted(set(targets) | set(bases)) if targets else None
    response, skipped = fetch_rates(provider=provider, symbols=symbols, force=force, deadline=deadline)
    fetched_at = timezone.now()
    tables, unavailable, refused = rebase(response, bases, targets)
    if not tables:
        raise RefreshFailed([ProviderError(response.provider, "; ".join(unavailable.values()), transient=False,
                                           code="no_base")])
    outcome = store_snapshots(provider=response.provider, as_of=response.as_of, fetched_at=fetched_at,
                              tables=tables)
    fetched_epoch = fetched_at.timestamp()
    as_of_epoch = response.as_of.timestamp()
    # Only a full refresh marks the bases fresh: one limited to a few targets must not stop the
    # next full one from fetching the rest.
    markers = [] if targets else [cache.Marker(b, fetched_epoch, as_of_epoch, response.provider) for b in tables]
    cache.publish(outcome.published, markers=markers)
    from fx.services.rates import reset_local_cache

    reset_local_cache()
    result = RefreshResult(
        status="stored", provider=response.provider, as_of=response.as_of, bases=list(tables),
        stored=outcome.stored, held=outcome.held, confirmed=outcome.confirmed,
        rejected={**response.rejected, **refused}, unavailable=unavailable, skipped=skipped, rates=tables,
    )
    logger.info(
        "fx refresh provider=%s as_of=%s bases=%s stored=%d held=%d rejected=%d skipped=%d",
        response.provider, response.as_of.isoformat(), ",".join(tables), result.total_stored, len(outcome.held),
        len(response.rejected), len(skipped),
    )
    new_jumps = [h for h in outcome.held if not h.repeat]
    if new_jumps:
        _alert_held(response.provider, new_jumps)
    return result


def _alert_held(provider: str, held: list[Held]) -> None:
    from broxiva.alerts import notify

    threshold = Decimal(str(settings.FX_MAX_CHANGE_PERCENT))
    lines = [f"{h.pair}: {h.previous} -> {h.rate} ({h.change_percent:+.2f}%)" for h in held[:50]]
    try:
        notify(
            f"FX: {len(held)} rate(s) from {provider} moved more than {threshold}% and are held back",
            "These rates were stored but are not served until staff confirm them (admin: Exchange rates, "
            "action 'Confirm held rates') or a later fetch agrees:\n" + "\n".join(lines),
            severity="warning", source="fx.refresh",
            details={"provider": provider, "held": [h.as_dict() for h in held]},
        )
    except Exception:  # the snapshots are stored; a broken alert channel must not undo the refresh
        logger.exception("fx held-rate alert failed provider=%s held=%d", provider, len(held))
