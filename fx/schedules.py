"""Periodic entries of the fx app (registered by ``broxiva.schedules.register``)."""

from __future__ import annotations

from django.conf import settings

from broxiva.schedules import Entry

SCHEDULES = [
    Entry(
        id="fx-refresh-all",
        queue="fx-refresh",
        func="fx.jobs.rates_refresh_job",
        # Fires every 15 minutes, at :00, :15, :30 and :45 past each hour (UTC). The 1-hour cache
        # makes three in four fires answer from Redis, so a provider is called about hourly.
        cron="*/15 * * * *",
        description="Refresh exchange rates for every FX_BASE_CURRENCIES base from one provider call",
        kwargs={"base_currency": settings.FX_BASE_CURRENCIES[0]},
    ),
]
