"""Sync runs: record and enqueue them, then run them a page at a time from their cursor.

``start_sync`` records a ``SyncRun`` and enqueues its job in one transaction (the outbox pushes
it after the commit). ``sync_run`` is what the job calls: under the connection's lock it reads a
page, stores it and saves the run's counts and cursor in one transaction, and goes on to the
next. A worker killed mid-run loses at most the page it was on: the retry starts from the saved
cursor, and the upserts (``connection, external_id`` is unique) cannot duplicate a product. A run
that would outlast its job's timeout enqueues its own continuation and returns.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import connection as db
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from broxiva.locks import LockNotAcquired, with_lock
from broxiva.queues import enqueue, enqueue_many, policy
from products.errors import SyncDeferred, SyncFailed, SyncRefused
from products.models import ConflictResolution, SourceConnection, SyncMode, SyncRun
from products.secrets import mask
from products.services.engine import SKIPPED_KEPT, PageResult, apply_page, archive_missing
from products.sources import get_source
from products.sources.base import Connection, SourceAuthError, SourceError, SourceThrottled

logger = logging.getLogger(__name__)

QUEUE = "product-sync"
JOB = "products.jobs.product_sync_job"
ANALYZED = ("products_product", "products_product_categories", "products_category", "products_variant")
DELETE_TOPICS = {
    "shopify": ("products/delete",),
    "woocommerce": ("product.deleted",),
    "bigcommerce": ("store/product/deleted",),
    "custom": ("product.deleted",),
}


def job_kwargs(run: SyncRun, *, webhook_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job's payload: ids and plain values only (never the connection's credentials)."""
    connection = run.connection
    return {
        "sync_id": run.pk,
        "tenant_id": connection.tenant_id,
        "connection_id": connection.pk,
        "source": connection.source,
        "mode": run.mode,
        "conflict_resolution": run.conflict_resolution or None,
        "webhook_data": webhook_data,
    }


def start_sync(
    *,
    connection_id: int,
    mode: str = "delta",
    conflict_resolution: str | None = None,
    trigger: str = SyncRun.Trigger.MANUAL,
) -> SyncRun:
    """Record a run of ``mode`` for the connection and enqueue its job (after the commit)."""
    if mode not in SyncMode.values:
        raise SyncRefused(f"unknown sync mode {mode!r}; known: {', '.join(SyncMode.values)}")
    if conflict_resolution not in (None, "", *ConflictResolution.values):
        raise SyncRefused(
            f"unknown conflict resolution {conflict_resolution!r}; known: {', '.join(ConflictResolution.values)}"
        )
    with transaction.atomic():
        try:
            connection = SourceConnection.objects.get(pk=connection_id)
        except SourceConnection.DoesNotExist:
            raise SyncRefused(f"no source connection {connection_id}") from None
        if not connection.is_active:
            raise SyncRefused(f"source connection {connection_id} is not active")
        run = SyncRun.objects.create(
            connection=connection, mode=mode, trigger=trigger, conflict_resolution=conflict_resolution or ""
        )
        enqueue(QUEUE, JOB, **job_kwargs(run))
    logger.info(
        "product sync queued run=%s connection=%s source=%s mode=%s", run.pk, connection.pk, connection.source, mode
    )
    return run


def schedule_deltas() -> list[int]:
    """The periodic entry: a delta run for every active connection, fanned out in one batch.

    A connection whose last run is still pending or running (a long full sync, a backlog) gets
    none: the next fire looks again.
    """
    busy = SyncRun.objects.filter(
        status__in=[SyncRun.Status.PENDING, SyncRun.Status.RUNNING],
        created_at__gte=timezone.now() - dt.timedelta(days=1),
    ).values("connection_id")
    connections = list(SourceConnection.objects.filter(is_active=True, tenant__is_active=True).exclude(pk__in=busy))
    if not connections:
        return []
    with transaction.atomic():
        runs = SyncRun.objects.bulk_create(
            [SyncRun(connection=c, mode=SyncMode.DELTA, trigger=SyncRun.Trigger.SCHEDULE) for c in connections]
        )
        for run, connection in zip(runs, connections, strict=True):
            run.connection = connection
        enqueue_many(QUEUE, JOB, [job_kwargs(run) for run in runs])
    logger.info("product sync deltas queued connections=%d", len(runs))
    return [run.pk for run in runs]


def source_connection(connection: SourceConnection) -> Connection:
    return Connection(
        id=connection.pk,
        base_url=connection.base_url,
        credentials=dict(connection.credentials or {}),
        currency=connection.currency,
    )


def sync_run(
    *,
    run_id: int,
    connection_id: int | None = None,
    webhook_data: dict[str, Any] | None = None,
    last_attempt: bool = True,
) -> dict[str, Any]:
    """Run (or resume) ``run_id`` under its connection's lock; return a small summary.

    Raise ``SyncDeferred`` when another sync of the connection holds the lock or the source
    throttles; ``SyncFailed`` (``transient`` as the cause) when a page could not be read — the run
    is marked failed unless a retry will follow (``last_attempt=False`` and a transient cause).
    """
    try:
        run = SyncRun.objects.select_related("connection__tenant").get(pk=run_id)
    except SyncRun.DoesNotExist:
        raise SyncFailed(f"no sync run {run_id}", transient=False) from None
    if connection_id is not None and run.connection_id != connection_id:
        raise SyncFailed(f"sync run {run_id} is not of connection {connection_id}", transient=False)
    if run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED):
        return {"status": run.status, "sync_id": run.pk, "duplicate": True}
    try:
        with with_lock(
            ("products", "sync", run.connection_id),
            ttl_seconds=settings.PRODUCT_SYNC_LOCK_TTL_SECONDS,
            keep_alive=True,
            wait_time_ms=settings.PRODUCT_SYNC_LOCK_WAIT_MS,
        ):
            return _run(run, webhook_data=webhook_data, last_attempt=last_attempt)
    except LockNotAcquired:
        raise SyncDeferred(
            f"another sync of connection {run.connection_id} is running",
            seconds=settings.PRODUCT_SYNC_LOCK_RETRY_SECONDS,
        ) from None


def _budget() -> float:
    # Leave a third of the queue's timeout for the page in flight and the hand-over.
    return min(settings.PRODUCT_SYNC_JOB_BUDGET_SECONDS, policy(QUEUE).timeout * 2 / 3)


def _run(run: SyncRun, *, webhook_data: dict[str, Any] | None, last_attempt: bool) -> dict[str, Any]:
    clock = time.monotonic()
    connection = run.connection
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.RUNNING, started_at=Coalesce(F("started_at"), timezone.now()), jobs=F("jobs") + 1
    )
    run.refresh_from_db(fields=["status", "started_at", "jobs", "cursor", "since", "pages"])
    if run.mode == SyncMode.DELTA and run.since is None and connection.sync_cursor and not webhook_data:
        run.since = connection.sync_cursor - dt.timedelta(seconds=settings.PRODUCT_SYNC_OVERLAP_SECONDS)
        SyncRun.objects.filter(pk=run.pk).update(since=run.since)
    strategy = run.conflict_resolution or connection.conflict_resolution
    full = run.mode == SyncMode.FULL and not webhook_data
    try:
        source = get_source(connection.source)
        if webhook_data:
            _apply_webhook(run, connection, source, webhook_data, strategy)
            return _finish(run, connection, full=False, advance=False)
        created = run.created  # by this run so far (its earlier jobs included)
        pages = _Prefetcher(source, source_connection(connection), mode=run.mode, since=run.since)
        categories: dict[str, tuple[str, int]] = {}  # stored by this job: later pages need not read them
        try:
            pending = pages.fetch(run.cursor or None)
            while True:
                page = pending.result()
                # Hand over after this page once the budget is spent (decided now, so that no
                # page is read ahead for nothing); otherwise read the next while this one is stored.
                hand_over = time.monotonic() - clock > _budget()
                if page.next_cursor is not None and not hand_over:
                    pending = pages.fetch(page.next_cursor)
                with transaction.atomic():
                    _relaxed_commit()
                    result = apply_page(
                        run=run,
                        connection=connection,
                        products=page.products,
                        skipped=page.skipped,
                        strategy=strategy,
                        full=full,
                        categories=categories,
                    )
                    run.cursor = page.next_cursor or run.cursor
                    _save_page(run, result)
                _analyze_after_bulk_load(created, created + result.created)
                created += result.created
                logger.info(
                    "product sync page run=%s page=%d created=%d updated=%d unchanged=%d skipped=%d",
                    run.pk,
                    run.pages,
                    result.created,
                    result.updated,
                    result.unchanged,
                    len(result.skipped),
                )
                if page.next_cursor is None:
                    return _finish(run, connection, full=full, advance=run.mode != SyncMode.INVENTORY_ONLY)
                if hand_over:
                    enqueue(QUEUE, JOB, **job_kwargs(run))
                    logger.info("product sync continues in a new job run=%s pages=%d", run.pk, run.pages)
                    return {"status": "continued", "sync_id": run.pk, "pages": run.pages}
        finally:
            pages.close()
    except SourceThrottled as exc:
        raise SyncDeferred(mask(str(exc), connection), seconds=exc.retry_after) from None
    except SourceAuthError as exc:
        raise _fail(run, connection, exc, permanent=True) from None
    except SourceError as exc:
        raise _fail(run, connection, exc, permanent=not exc.transient or last_attempt) from None
    except Exception as exc:  # a bug, a database error: retried by the policy, and recorded at the end
        if last_attempt:
            _fail(run, connection, exc, permanent=True)
        raise


def _relaxed_commit() -> None:
    """Let this page's COMMIT return before its WAL reaches the disk (PostgreSQL only).

    Safe here because a page and the cursor after it commit together: if the server crashed
    within the WAL writer's delay (~0.6 s) both would be lost, and the run would read that page
    again from the previous cursor. It spares the run one disk flush per page.
    """
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


class _Prefetcher:
    """Reads the next page in a thread while the current one is stored (one page ahead, no more).

    The network wait of a page and the database work of the previous one overlap; the order of
    pages, the cursor saved after each stored page and the errors (raised by ``result()``) are as
    without it. Sources only talk to their API in ``fetch_page``, never to the database.
    """

    def __init__(self, source: Any, connection: Connection, *, mode: str, since: dt.datetime | None) -> None:
        self.source, self.connection, self.mode, self.since = source, connection, mode, since
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="product-sync-prefetch")

    def fetch(self, cursor: str | None) -> Future:
        return self.pool.submit(
            self.source.fetch_page, self.connection, mode=self.mode, since=self.since, cursor=cursor
        )

    def close(self) -> None:
        # A page read ahead for a run that stopped (an error, a hand-over) is dropped, not waited for.
        self.pool.shutdown(wait=False, cancel_futures=True)


def _analyze_after_bulk_load(before: int, after: int) -> None:
    """Refresh PostgreSQL's statistics when a run's creations pass 1,000, 10,000, 100,000…

    A first import fills the tables far faster than autovacuum's next ANALYZE (up to a minute
    away, or never where autovacuum is off); until then the planner reads each page's products
    by scanning the whole connection instead of the unique index, so pages get slower as the
    catalogue grows (PostgreSQL's docs: "Populating a Database — run ANALYZE afterwards").
    """
    if db.vendor != "postgresql" or after < 1000 or len(str(before)) == len(str(after)):
        return
    with db.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(ANALYZED)}")
    logger.info("product sync: statistics refreshed after %d products created", after)


def _save_page(run: SyncRun, result: PageResult) -> None:
    run.pages += 1
    kept: list[dict[str, str]] = []
    if result.skipped:
        kept = SyncRun.objects.filter(pk=run.pk).values_list("skipped", flat=True).first() or []
    updates: dict[str, Any] = {
        "cursor": run.cursor,
        "pages": F("pages") + 1,
        "created": F("created") + result.created,
        "updated": F("updated") + result.updated,
        "unchanged": F("unchanged") + result.unchanged,
        "conflicts": F("conflicts") + result.conflicts,
        "errors": F("errors") + len(result.skipped),
    }
    if result.skipped and len(kept) < SKIPPED_KEPT:
        updates["skipped"] = kept + [s.as_dict() for s in result.skipped][: SKIPPED_KEPT - len(kept)]
    SyncRun.objects.filter(pk=run.pk).update(**updates)


def _apply_webhook(
    run: SyncRun, connection: SourceConnection, source: Any, data: dict[str, Any], strategy: str
) -> None:
    topic, payload, headers = data.get("topic") or "", data.get("payload"), data.get("headers") or {}
    try:
        deleted = _deleted_id(connection.source, payload) if topic in DELETE_TOPICS.get(connection.source, ()) else None
        products = None if deleted else source.parse_webhook(source_connection(connection), headers, payload)
    except ValueError as exc:  # not a product event we can read: nothing to retry
        raise SourceError(f"{connection.source} webhook: {exc}", transient=False) from None
    with transaction.atomic():
        if deleted is not None:
            archived = archive_missing(run=run, connection=connection, external_ids=[deleted])
            SyncRun.objects.filter(pk=run.pk).update(archived=F("archived") + archived, pages=F("pages") + 1)
            return
        result = apply_page(run=run, connection=connection, products=products, strategy=strategy)
        _save_page(run, result)


def _deleted_id(source: str, payload: Any) -> str:
    value = None
    if isinstance(payload, dict):
        value = (payload.get("data") or {}).get("id") if source == "bigcommerce" else payload.get("id")
    if value is None or isinstance(value, (dict, list, bool)):
        raise ValueError("the delete event carries no product id")
    return str(value)


def _finish(run: SyncRun, connection: SourceConnection, *, full: bool, advance: bool) -> dict[str, Any]:
    with transaction.atomic():
        archived = archive_missing(run=run, connection=connection) if full else 0
        SyncRun.objects.filter(pk=run.pk).update(
            status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now(), archived=F("archived") + archived
        )
        if advance:
            # Never move the cursor back (an older run finishing after a newer one).
            SourceConnection.objects.filter(pk=connection.pk).filter(
                Q(sync_cursor__isnull=True) | Q(sync_cursor__lt=run.started_at)
            ).update(sync_cursor=run.started_at, last_synced_at=timezone.now())
    run.refresh_from_db()
    logger.info(
        "product sync succeeded run=%s connection=%s mode=%s pages=%d %s",
        run.pk,
        connection.pk,
        run.mode,
        run.pages,
        " ".join(f"{k}={v}" for k, v in run.counts.items()),
    )
    return {"status": run.status, "sync_id": run.pk, "pages": run.pages, **run.counts}


def _fail(run: SyncRun, connection: SourceConnection, exc: Exception, *, permanent: bool) -> SyncFailed:
    message = mask(str(exc), connection)
    if permanent:
        SyncRun.objects.filter(pk=run.pk).update(
            status=SyncRun.Status.FAILED, finished_at=timezone.now(), error=message[:2000]
        )
        logger.warning("product sync failed run=%s connection=%s: %s", run.pk, connection.pk, message)
    else:
        SyncRun.objects.filter(pk=run.pk).update(error=message[:2000])
        logger.warning("product sync page failed, will retry run=%s connection=%s: %s", run.pk, connection.pk, message)
    return SyncFailed(message, transient=not permanent)
