"""Jobs of the ``fx-refresh`` queue (thin: validate → service → small JSON result).

The refresh lock lives in the service rather than here, so that ``manage.py fx_refresh`` and
the admin are serialised with the job too.
"""

from __future__ import annotations

from typing import Any

import pydantic

from broxiva.queues import JobPayload, payload
from broxiva.ratelimit import DeferJob
from fx import services
from fx.currencies import require
from fx.errors import RefreshDeferred, RefreshInProgress
from fx.providers import PROVIDER_NAMES


class FxRefreshJobData(JobPayload):
    """The seed's ``FxRefreshJobData``, in snake_case."""

    base_currency: str
    target_currencies: list[str] | None = None
    provider: str | None = None
    force_refresh: bool = False

    @pydantic.field_validator("base_currency")
    @classmethod
    def _base(cls, value: str) -> str:
        return require(value)

    @pydantic.field_validator("target_currencies")
    @classmethod
    def _targets(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one currency, or leave it out for all of them")
        return list(dict.fromkeys(require(v) for v in value))

    @pydantic.field_validator("provider")
    @classmethod
    def _provider(cls, value: str | None) -> str | None:
        if value is not None and value not in PROVIDER_NAMES:
            raise ValueError(f"unknown provider {value!r}; known: {', '.join(PROVIDER_NAMES)}")
        return value


@payload(FxRefreshJobData)
def rates_refresh_job(data: FxRefreshJobData) -> dict[str, Any]:
    try:
        result = services.rates_refresh(
            base=data.base_currency, provider=data.provider, targets=data.target_currencies, force=data.force_refresh
        )
    except RefreshDeferred as exc:
        raise DeferJob(exc.retry_after, reason=str(exc)) from None
    except RefreshInProgress:
        return {"status": "skipped", "reason": "another refresh holds the lock"}
    # A RefreshFailed propagates: transient ones are retried per the queue's policy; the worker
    # fails permanent ones (transient=False: a bad key, an invalid base) at once.
    return result.as_dict()
