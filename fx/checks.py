"""System checks: the FX settings name real currencies (settings.py can only check their shape)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from fx.currencies import is_currency


@register()
def fx_settings_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    unknown = [code for code in settings.FX_BASE_CURRENCIES if not is_currency(code)]
    if unknown:
        errors.append(Error(
            f"FX_BASE_CURRENCIES has codes that are not ISO 4217 currencies: {', '.join(unknown)}",
            hint="Use three-letter ISO 4217 codes, e.g. USD,EUR,GBP.", id="fx.E001",
        ))
    from broxiva.queues import policy

    job_timeout = policy("fx-refresh").timeout
    if job_timeout and settings.FX_REFRESH_DEADLINE + 10 > job_timeout:
        errors.append(Error(
            f"FX_REFRESH_DEADLINE={settings.FX_REFRESH_DEADLINE:g}s leaves under 10 s of the fx-refresh job's "
            f"{job_timeout}s timeout: the worker would kill a slow refresh before it can store what it fetched.",
            hint="Lower FX_REFRESH_DEADLINE or raise the fx-refresh timeout in QUEUE_OVERRIDES.", id="fx.E002",
        ))
    return errors
