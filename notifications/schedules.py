"""Periodic entries of the notifications app (registered by ``broxiva.schedules.register``)."""

from __future__ import annotations

from broxiva.schedules import Entry

SCHEDULES = [
    Entry(
        id="notifications-stale-sends",
        queue="email",
        func="notifications.jobs.email.stale_sends_sweep_job",
        # Fires every 5 minutes, at :00, :05, :10 … past each hour (UTC).
        cron="*/5 * * * *",
        description="Fail e-mails and pushes left 'sending' by a dead worker (outcome unknown, never re-sent)",
    ),
]
