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
    Entry(
        id="webhook-dispatch",
        queue="webhook-delivery",
        func="notifications.jobs.webhooks.webhook_dispatch_job",
        # Fires every minute. Deliveries normally go out at once (a dispatch is queued after each
        # publish and scheduled at each retry's time); this catches any whose kick was lost
        # (Redis down at commit) and recovers deliveries of a dispatcher that died mid-send.
        cron="* * * * *",
        description="Deliver due webhooks and recover deliveries abandoned by a dead dispatcher",
    ),
    Entry(
        id="webhook-endpoints-disable",
        queue="webhook-delivery",
        func="notifications.jobs.webhooks.webhook_endpoints_disable_job",
        # Fires at 17 minutes past every hour (UTC): a 5-day rule needs no finer grain.
        cron="17 * * * *",
        description="Disable webhook endpoints whose deliveries have all failed for WEBHOOK_DISABLE_AFTER_DAYS",
    ),
]
