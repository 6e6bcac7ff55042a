"""Jobs of the ``product-sync`` queue (thin: validate → service → small JSON result)."""

from __future__ import annotations

from typing import Any, Literal

from rq import get_current_job

from broxiva.queues import JobPayload, payload
from broxiva.ratelimit import DeferJob
from products import services
from products.errors import SyncDeferred


class ProductSyncJobData(JobPayload):
    """The seed's ``ProductSyncJobData`` in snake_case, plus the connection's id.

    Ids and plain values only: the source's credentials are read from the connection row by the
    worker, never carried in the job. ``webhook_data`` is a verified webhook's topic, headers
    and decoded body.
    """

    sync_id: int
    tenant_id: int
    connection_id: int
    source: Literal["shopify", "woocommerce", "bigcommerce", "custom"]
    mode: Literal["full", "delta", "inventory_only"]
    conflict_resolution: Literal["source_wins", "local_wins", "newest_wins", "flag_for_review"] | None = None
    webhook_data: dict[str, Any] | None = None


@payload(ProductSyncJobData)
def product_sync_job(data: ProductSyncJobData) -> dict[str, Any]:
    job = get_current_job()
    try:
        return services.sync_run(
            run_id=data.sync_id,
            connection_id=data.connection_id,
            webhook_data=data.webhook_data,
            last_attempt=job is None or not job.retries_left,
        )
    except SyncDeferred as exc:
        raise DeferJob(exc.seconds, reason=str(exc)) from None
    # A SyncFailed propagates: a permanent one (bad credentials, a refused URL) fails the job at
    # once; a transient one is retried by the queue's policy, the run resuming from its cursor.


def product_sync_all_job() -> dict[str, Any]:
    """The periodic entry: fan out one delta per active connection."""
    return {"queued": len(services.schedule_deltas())}
