"""Periodic entries of the translations app (registered by ``broxiva.schedules.register``)."""

from __future__ import annotations

from broxiva.schedules import Entry

SCHEDULES = [
    Entry(
        id="translations-batch-poll",
        queue="translation",
        func="translations.jobs.batch_poll_job",
        # Fires every minute. With no submitted batch it is one indexed query.
        cron="* * * * *",
        description="Check submitted provider batches (Anthropic Message Batches, OpenAI Batch API) and store results",
    ),
]
