"""Periodic entries of the domains app (registered by ``broxiva.schedules.register``)."""

from __future__ import annotations

from broxiva.schedules import Entry

SCHEDULES = [
    Entry(
        id="domains-sweep",
        queue="domain-verification",
        func="domains.jobs.domains_sweep_job",
        # Fires every 5 minutes, at :00, :05, :10 … past each hour (UTC).
        cron="*/5 * * * *",
        description="Fail domains pending too long; enqueue a check of every due domain (pending, daily re-checks)",
    ),
]
