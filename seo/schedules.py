"""Periodic entries of the seo app (registered by ``broxiva.schedules.register``)."""

from __future__ import annotations

from broxiva.schedules import Entry

SCHEDULES = [
    Entry(
        id="sitemaps-generate-all",
        queue="sitemap-generation",
        func="seo.jobs.generate_sitemaps_all_job",
        # Fires once a day at 03:00 UTC; fans out one generation job per active tenant.
        cron="0 3 * * *",
        description="Regenerate every active tenant's sitemaps (and announce changed URLs with IndexNow)",
    ),
]
