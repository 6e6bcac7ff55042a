"""Real rqworker processes: deferral, permanent failure, a SIGKILL mid-sync, continuation, fan-out."""

from __future__ import annotations

import json

import pytest
from rq.job import Job, JobStatus

from broxiva.locks import acquire_lock, release_lock
from broxiva.queues import get_queue
from products.models import Product, SourceConnection, SyncRun
from products.services import start_sync
from tests.broxiva.ops_helpers import fast_recovery_env, kill_hard
from tests.products.woo_server import KEY, woo_product
from tests.workers import running_worker, start_worker, stop, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def env(**extra: str) -> dict[str, str]:
    return worker_env(OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8", PRODUCT_SYNC_PAGE_SIZE="2", **extra)


def jobs_of(queue_name: str = "product-sync") -> list[Job]:
    queue = get_queue(queue_name)
    registries = [
        queue.job_ids,
        queue.finished_job_registry.get_job_ids(),
        queue.failed_job_registry.get_job_ids(),
        queue.scheduled_job_registry.get_job_ids(),
    ]
    return [queue.fetch_job(job_id) for ids in registries for job_id in ids]


def burst(**extra: str) -> None:
    with running_worker("product-sync", burst=True, env=env(**extra)) as worker:
        wait_for(lambda: worker.poll() is not None, timeout=90, what="the burst worker to finish")


def test_a_real_worker_defers_a_429_and_fails_a_401_at_once(shop, woo, acme):
    shop.add(*(woo_product(i) for i in range(1, 4)))
    shop.fail.append((429, {"Retry-After": "120"}, {"code": "too_many_requests", "message": "Slow down"}))
    locked_out = SourceConnection.objects.create(
        tenant=acme,
        source="woocommerce",
        base_url=shop.url,
        credentials={"consumer_key": KEY, "consumer_secret": "cs_revoked_secret_0123456789"},
    )
    throttled = start_sync(connection_id=woo.pk, mode="full")
    refused = start_sync(connection_id=locked_out.pk, mode="full")

    burst()

    by_run = {job.kwargs["sync_id"]: job for job in jobs_of()}
    deferred = by_run[throttled.pk]
    assert deferred.get_status() == JobStatus.SCHEDULED
    assert deferred.retries_left == 4 and deferred.meta.get("broxiva_deferrals") == 1  # no attempt spent
    assert SyncRun.objects.get(pk=throttled.pk).status == "running"  # resumable, nothing lost

    failed = by_run[refused.pk]
    assert failed.get_status() == JobStatus.FAILED
    assert "woocommerce products: HTTP 401: Sorry, you cannot list resources." in failed.latest_result().exc_string
    assert "cs_revoked" not in failed.latest_result().exc_string
    run = SyncRun.objects.get(pk=refused.pk)
    assert run.status == "failed" and run.error == "woocommerce products: HTTP 401: Sorry, you cannot list resources."
    assert not Product.objects.filter(connection=locked_out).exists()


def test_a_worker_killed_mid_sync_resumes_from_its_cursor_without_duplicates(shop, woo, settings):
    # Retried at once (no wait for a scheduler: the dead worker's scheduler lock outlives it by a
    # minute); the dead worker's sync lock expires within PRODUCT_SYNC_LOCK_TTL_SECONDS, which the
    # retry waits out (PRODUCT_SYNC_LOCK_WAIT_MS).
    settings.QUEUE_OVERRIDES = {"product-sync": {"backoff_base": 0, "max_delay": 0}}
    shop.add(*(woo_product(i) for i in range(1, 11)))  # 5 pages of 2
    shop.delay = 0.7
    run = start_sync(connection_id=woo.pk, mode="full")
    extra = {
        "QUEUE_OVERRIDES": json.dumps(settings.QUEUE_OVERRIDES),
        "PRODUCT_SYNC_LOCK_TTL_SECONDS": "3",
        "PRODUCT_SYNC_LOCK_RETRY_SECONDS": "1",
        "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PRODUCT_SYNC_PAGE_SIZE": "2",
    }
    victim = start_worker("product-sync", env=fast_recovery_env(**extra))
    try:
        wait_for(lambda: SyncRun.objects.get(pk=run.pk).pages >= 2, timeout=60, what="two pages stored")
        kill_hard(victim)
    finally:
        stop(victim)
    killed = SyncRun.objects.get(pk=run.pk)
    assert killed.status == "running" and 2 <= killed.pages < 5
    requested_before = len(shop.list_requests())
    shop.delay = 0

    rescuer = start_worker("product-sync", env=fast_recovery_env(**extra))
    try:
        wait_for(
            lambda: SyncRun.objects.get(pk=run.pk).status == "succeeded",
            timeout=120,
            what="the abandoned run to be retried and finish",
        )
    finally:
        stop(rescuer)

    done = SyncRun.objects.get(pk=run.pk)
    assert done.created == 10 and done.pages == 5 and done.jobs == 2
    assert Product.objects.filter(connection=woo).count() == 10
    # The retry asked for the page after the last one stored, not page 1 again.
    resumed = [int(r["query"]["page"]) for r in shop.list_requests()[requested_before:]]
    assert resumed[0] == killed.pages + 1 and resumed[-1] == 5


def test_a_long_run_continues_in_new_jobs_from_its_cursor(shop, woo):
    shop.add(*(woo_product(i) for i in range(1, 8)))  # 4 pages

    start_sync(connection_id=woo.pk, mode="full")
    burst(PRODUCT_SYNC_JOB_BUDGET_SECONDS="0")

    run = SyncRun.objects.get()
    assert run.status == "succeeded" and run.created == 7 and run.pages == 4
    assert run.jobs == 4  # one page per job with a zero budget, each from the saved cursor
    results = sorted(job.return_value()["status"] for job in jobs_of())
    assert results == ["continued", "continued", "continued", "succeeded"]
    assert [int(r["query"]["page"]) for r in shop.list_requests()] == [1, 2, 3, 4]


def test_a_second_sync_of_a_connection_is_deferred_while_the_first_holds_the_lock(shop, woo):
    shop.add(woo_product(1))
    held = acquire_lock(("products", "sync", woo.pk), ttl_seconds=60)
    try:
        run = start_sync(connection_id=woo.pk, mode="delta")
        burst(PRODUCT_SYNC_LOCK_WAIT_MS="0")
    finally:
        release_lock(held.resource, held.lock_id)
    (job,) = jobs_of()
    assert job.get_status() == JobStatus.SCHEDULED and job.meta.get("broxiva_deferrals") == 1
    assert job.retries_left == 4
    assert SyncRun.objects.get(pk=run.pk).status == "pending" and shop.requests == []


def test_the_periodic_entry_fans_out_a_delta_per_active_connection(shop, woo, acme, globex):
    from broxiva.schedules import get_scheduler, register
    from products.schedules import SCHEDULES

    shop.add(woo_product(1))
    second = SourceConnection.objects.create(
        tenant=globex, source="woocommerce", base_url=shop.url, credentials=woo.credentials
    )
    SourceConnection.objects.create(
        tenant=acme, source="woocommerce", base_url=shop.url, is_active=False, credentials=woo.credentials
    )
    (entry,) = SCHEDULES
    assert (entry.queue, entry.cron, entry.func) == (
        "product-sync",
        "0 */6 * * *",
        "products.jobs.product_sync_all_job",
    )
    scheduler = get_scheduler()
    register([entry], scheduler=scheduler)
    scheduler.connection.zadd(scheduler.scheduled_jobs_key, {entry.job_id: 0})
    scheduler.enqueue_jobs()

    burst()

    runs = SyncRun.objects.all()
    assert sorted(r.connection_id for r in runs) == sorted([woo.pk, second.pk])
    assert {(r.mode, r.trigger, r.status) for r in runs} == {("delta", "schedule", "succeeded")}
    assert Product.objects.filter(connection=second).count() == 1
