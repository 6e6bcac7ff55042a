"""Full, delta and inventory-only syncs against a local WooCommerce shop, run in-process."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext

from broxiva.models import OutboxJob
from products.errors import SyncFailed
from products.models import Category, Product, SourceConnection, SyncRun, Variant
from tests.products.conftest import run_sync
from tests.products.woo_server import BASE, KEY, SECRET, gmt, woo_product, woo_variation

pytestmark = pytest.mark.django_db


def later() -> dt.datetime:
    """A source change made now, after the sync that ran before it (seconds: WooCommerce's precision)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)


def test_it_imports_every_product_then_a_delta_asks_from_the_last_sync_minus_the_overlap(shop, woo, settings):
    shop.add(*(woo_product(i) for i in range(1, 6)))
    run = run_sync(woo, mode="full")

    assert run.status == "succeeded" and run.error == ""
    assert (run.created, run.updated, run.unchanged, run.archived, run.pages) == (5, 0, 0, 0, 3)
    product = Product.objects.get(connection=woo, external_id="3")
    assert (product.title, product.handle, product.status, product.price, product.currency) == (
        "Product 3",
        "product-3",
        "active",
        Decimal("19.99"),
        "EUR",
    )
    assert product.inventory_quantity == 5 and product.description == "<p>About product 3</p>"
    assert product.source_updated_at == BASE
    assert list(product.categories.values_list("name", flat=True)) == ["Clothing"]
    assert Category.objects.filter(connection=woo).count() == 1
    # A full listing is ordered by id and carries no modified_after.
    assert all(r["query"]["orderby"] == "id" and "modified_after" not in r["query"] for r in shop.list_requests())
    woo.refresh_from_db()
    assert woo.sync_cursor == run.started_at and woo.last_synced_at is not None

    shop.add(woo_product(2, name="Product 2 renamed", modified=later()), woo_product(9, modified=later()))
    shop.requests.clear()
    delta = run_sync(woo, mode="delta")

    assert delta.status == "succeeded"
    assert (delta.created, delta.updated, delta.unchanged, delta.archived) == (1, 1, 0, 0)
    expected_since = run.started_at - dt.timedelta(seconds=settings.PRODUCT_SYNC_OVERLAP_SECONDS)
    assert delta.since == expected_since
    first = shop.list_requests()[0]["query"]
    assert first["modified_after"] == gmt(expected_since) and first["dates_are_gmt"] == "true"
    assert first["orderby"] == "modified" and first["order"] == "asc" and first["per_page"] == "2"
    assert Product.objects.get(connection=woo, external_id="2").title == "Product 2 renamed"
    assert Product.objects.filter(connection=woo).count() == 6


def test_a_product_removed_at_the_source_is_archived_never_deleted(shop, woo):
    shop.add(*(woo_product(i) for i in range(1, 5)))
    run_sync(woo, mode="full")
    del shop.products[3]

    run = run_sync(woo, mode="full")

    assert (run.archived, run.unchanged, run.created) == (1, 3, 0)
    gone = Product.objects.get(connection=woo, external_id="3")
    assert gone.status == "archived" and gone.synced["status"] == "archived"
    assert Product.objects.filter(connection=woo).exclude(status="archived").count() == 3
    # It comes back: a change at the source, taken.
    shop.add(woo_product(3, modified=later()))
    run_sync(woo, mode="full")
    assert Product.objects.get(pk=gone.pk).status == "active"


def test_a_delta_never_archives(shop, woo):
    shop.add(*(woo_product(i) for i in range(1, 4)))
    run_sync(woo, mode="full")
    shop.products.clear()
    run = run_sync(woo, mode="delta")
    assert run.archived == 0 and not Product.objects.filter(status="archived").exists()


def test_an_unchanged_resync_writes_nothing_and_counts_unchanged(shop, woo):
    # Changed 100 s before the full sync: inside the overlap, so the next delta reads them again.
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=100)
    shop.add(*(woo_product(i, modified=recent) for i in range(1, 6)))
    run_sync(woo, mode="full")
    before = dict(Product.objects.values_list("id", "updated_at"))

    run = run_sync(woo, mode="delta")

    assert (run.unchanged, run.updated, run.created) == (5, 0, 0)
    assert dict(Product.objects.values_list("id", "updated_at")) == before
    again = run_sync(woo, mode="full")
    assert (again.unchanged, again.updated, again.archived) == (5, 0, 0)
    assert dict(Product.objects.values_list("id", "updated_at")) == before


def test_inventory_only_touches_quantities_and_nothing_else(shop, woo):
    shop.add(woo_product(1), woo_product(2, type_="variable", variations=[21, 22]))
    shop.variations[2] = [
        woo_variation(21, sku="S-21", price="10.00", stock=3, option="S"),
        woo_variation(22, sku="S-22", price="11.00", stock=4, option="M"),
    ]
    run_sync(woo, mode="full")
    # Everything changes at the source; an inventory sync must take only the quantities.
    shop.add(
        woo_product(1, name="New name", price="99.00", stock=42, modified=later(), description="<p>new</p>"),
        woo_product(2, name="Other", price="1.00", stock=7, modified=later(), type_="variable", variations=[21, 22]),
    )
    shop.variations[2] = [
        woo_variation(21, sku="CHANGED", price="50.00", stock=0, option="XL"),
        woo_variation(22, sku="S-22", price="11.00", stock=9, option="M"),
    ]
    shop.add(woo_product(3))  # new at the source: not created by an inventory sync
    shop.requests.clear()

    run = run_sync(woo, mode="inventory_only")

    assert run.status == "succeeded" and (run.updated, run.created) == (2, 0)
    assert run.skipped == [{"external_id": "3", "reason": "not stored yet: run a full or delta sync first"}]
    one = Product.objects.get(external_id="1")
    assert (one.inventory_quantity, one.title, one.price, one.description) == (
        42,
        "Product 1",
        Decimal("19.99"),
        "<p>About product 1</p>",
    )
    assert one.source_updated_at == BASE  # not a content sync
    variants = {v.external_id: v for v in Variant.objects.filter(product__external_id="2")}
    assert (variants["21"].inventory_quantity, variants["21"].sku, variants["21"].price) == (0, "S-21", Decimal("10"))
    assert variants["22"].inventory_quantity == 9
    assert Product.objects.get(external_id="2").title == "Product 2"
    assert not Product.objects.filter(external_id="3").exists()
    assert all(r["query"].get("_fields") for r in shop.list_requests())
    woo.refresh_from_db()
    assert woo.sync_cursor < run.started_at  # an inventory sync does not move the delta cursor


def test_variable_products_get_their_variations(shop, woo):
    shop.add(woo_product(7, type_="variable", variations=[71, 72]))
    shop.variations[7] = [
        woo_variation(71, sku="TEE-S", price="10.00", stock=3, option="S"),
        woo_variation(72, sku="TEE-M", price="12.50", stock=None, option="M"),
    ]
    run_sync(woo, mode="full")
    variants = list(
        Variant.objects.filter(product__external_id="7")
        .order_by("external_id")
        .values_list("external_id", "sku", "title", "price", "inventory_quantity")
    )
    assert variants == [("71", "TEE-S", "S", Decimal("10"), 3), ("72", "TEE-M", "M", Decimal("12.5"), None)]
    shop.variations[7] = shop.variations[7][:1]
    shop.add(woo_product(7, type_="variable", variations=[71], modified=later()))
    run_sync(woo, mode="delta")
    assert list(Variant.objects.filter(product__external_id="7").values_list("sku", flat=True)) == ["TEE-S"]


def test_a_malformed_product_is_skipped_with_its_id_and_reason_never_aborting_the_page(shop, woo):
    bad_price = woo_product(2, price="twelve")
    no_date = woo_product(3)
    del no_date["date_modified_gmt"]
    shop.add(woo_product(1), bad_price, no_date, woo_product(4))

    run = run_sync(woo, mode="full")

    assert run.status == "succeeded" and run.created == 2 and run.errors == 2
    assert run.skipped == [
        {"external_id": "2", "reason": "price 'twelve' is not a number"},
        {"external_id": "3", "reason": "missing date_modified_gmt"},
    ]
    assert set(Product.objects.values_list("external_id", flat=True)) == {"1", "4"}


def test_a_product_that_fails_to_read_is_not_archived_by_a_full_sync(shop, woo):
    shop.add(woo_product(1), woo_product(2))
    run_sync(woo, mode="full")
    shop.add(woo_product(2, price="n/a", modified=later()))
    run = run_sync(woo, mode="full")
    assert run.errors == 1 and run.archived == 0
    assert Product.objects.get(external_id="2").status == "active"


def test_sql_round_trips_grow_with_pages_not_products(shop, woo, settings):
    def queries_for(count: int) -> int:
        Product.objects.all().delete()
        Category.objects.all().delete()
        SourceConnection.objects.filter(pk=woo.pk).update(sync_cursor=None)
        shop.products.clear()
        shop.add(*(woo_product(i, categories=[{"id": i % 3, "name": f"C{i % 3}"}]) for i in range(1, count + 1)))
        with CaptureQueriesContext(db) as queries:
            run = run_sync(woo, mode="full")
        assert run.created == count
        return len(queries)

    settings.PRODUCT_SYNC_PAGE_SIZE = 100
    one_page_small, one_page_large = queries_for(5), queries_for(100)
    assert one_page_small == one_page_large
    settings.PRODUCT_SYNC_PAGE_SIZE = 50
    assert queries_for(100) < 2 * one_page_large  # two pages: about twice one page's fixed cost, not 100 more


def test_401_fails_the_run_with_the_sources_message_and_no_secret(shop, woo):
    woo.credentials = {"consumer_key": KEY, "consumer_secret": "cs_wrong_secret_value_123456"}
    woo.save()
    run = SyncRun.objects.create(connection=woo, mode="full")
    from products.services import sync_run

    with pytest.raises(SyncFailed) as info:
        sync_run(run_id=run.pk)
    run.refresh_from_db()
    assert info.value.transient is False
    assert run.status == "failed" and run.finished_at is not None
    assert run.error == "woocommerce products: HTTP 401: Sorry, you cannot list resources."
    assert "cs_wrong" not in str(info.value) and not Product.objects.exists()


def test_a_transient_failure_keeps_the_run_resumable_until_the_last_attempt(shop, woo):
    from products.services import sync_run

    shop.add(*(woo_product(i) for i in range(1, 5)))
    run = SyncRun.objects.create(connection=woo, mode="full")
    shop.fail.append((502, {}, {"message": "Bad gateway"}))
    with pytest.raises(SyncFailed) as info:
        sync_run(run_id=run.pk, last_attempt=False)
    run.refresh_from_db()
    assert info.value.transient and run.status == "running" and "HTTP 502" in run.error

    result = sync_run(run_id=run.pk, last_attempt=False)
    assert result["status"] == "succeeded" and result["created"] == 4


def test_the_guard_refuses_a_shop_on_an_internal_address_without_the_allowance(shop, woo, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    shop.add(woo_product(1))
    run = SyncRun.objects.create(connection=woo, mode="full")
    from products.services import sync_run

    with pytest.raises(SyncFailed):
        sync_run(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "loopback" in run.error.lower()
    assert shop.requests == []  # refused before connecting


def test_credentials_are_sent_over_plain_http_only_to_loopback(acme):
    from products.models import SourceConnection as SC
    from products.services import sync_run

    connection = SC.objects.create(
        tenant=acme,
        source="woocommerce",
        base_url="http://shop.example.com",
        credentials={"consumer_key": KEY, "consumer_secret": SECRET},
    )
    run = SyncRun.objects.create(connection=connection, mode="full")
    with pytest.raises(SyncFailed, match="must use https"):
        sync_run(run_id=run.pk)


def test_start_sync_records_a_run_and_a_job_with_ids_only(woo):
    from products.services import start_sync

    run = start_sync(connection_id=woo.pk, mode="full", conflict_resolution="local_wins")
    (job,) = OutboxJob.objects.filter(queue="product-sync")
    assert job.func == "products.jobs.product_sync_job"
    assert job.kwargs == {
        "sync_id": run.pk,
        "tenant_id": woo.tenant_id,
        "connection_id": woo.pk,
        "source": "woocommerce",
        "mode": "full",
        "conflict_resolution": "local_wins",
        "webhook_data": None,
    }
    assert SECRET not in str(job.kwargs) and KEY not in str(job.kwargs)


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"mode": "everything"}, "unknown sync mode"),
        ({"conflict_resolution": "coin_toss"}, "unknown conflict resolution"),
    ],
)
def test_start_sync_refuses_bad_input_and_records_nothing(woo, kwargs, problem):
    from products.errors import SyncRefused
    from products.services import start_sync

    with pytest.raises(SyncRefused, match=problem):
        start_sync(connection_id=woo.pk, **kwargs)
    assert not SyncRun.objects.exists() and not OutboxJob.objects.exists()
