"""Periodic entries of the products app (registered by ``broxiva.schedules.register``)."""

from __future__ import annotations

from broxiva.schedules import Entry

SCHEDULES = [
    Entry(
        id="product-sync-deltas",
        queue="product-sync",
        func="products.jobs.product_sync_all_job",
        # Fires every 6 hours, at 00:00, 06:00, 12:00 and 18:00 UTC; fans out one delta job per
        # active connection (enqueue_many), skipping connections whose last run has not ended.
        cron="0 */6 * * *",
        description="Delta product sync for every active source connection",
    ),
]
