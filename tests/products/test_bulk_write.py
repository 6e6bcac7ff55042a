"""The PostgreSQL write path of a page (COPY into a temp table + one upsert statement) against the
ORM path (``bulk_create``, what SQLite runs and what PostgreSQL ran before): the same rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext

from products.models import Product, SourceConnection, SyncRun, Variant
from products.services import bulk
from tests.products.conftest import run_sync
from tests.products.woo_server import KEY, SECRET, woo_product, woo_variation

pytestmark = pytest.mark.django_db

# Text COPY's text format must escape (tab, newline, backslash, the \N of NULL) and non-ASCII.
AWKWARD = "Tab\there\nnew line \\ back\\slash \\N not null, «ünï» 🧪 'quote' \"dq\""
LATER = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC)


def _catalogue(shop, *, changed: bool = False) -> None:
    shop.products.clear()
    cats = [{"id": 1, "name": "Mugs"}, {"id": 2, "name": "Tea\tware"}, {"id": 3, "name": "Sale"}]
    when = LATER if changed else None
    shop.add(
        woo_product(1, name=AWKWARD, description=AWKWARD, categories=cats[:2]),
        woo_product(2, price="", stock=None, status="draft", categories=[]),
        woo_product(3, name="Renamed" if changed else "Three", categories=cats[1:] if changed else cats, modified=when),
        woo_product(4, type_="variable", variations=[41, 42], modified=when),
        woo_product(5, price="0.0001", stock=-3, slug="ünï-slug", status="trash"),
    )
    shop.variations[4] = [woo_variation(41, sku="S\\1", price="10.00", stock=3, option="S\tx")] + (
        [] if changed else [woo_variation(42, sku="M", price="12.5", stock=None, option="M")]
    )


def _stored(connection: SourceConnection) -> dict[str, dict]:
    fields = [f.name for f in Product._meta.concrete_fields if f.name not in ("id", "connection", "last_seen_run")]
    rows = {}
    for product in Product.objects.filter(connection=connection).prefetch_related("categories", "variants"):
        row = {name: getattr(product, name) for name in fields if name not in ("created_at", "updated_at")}
        row["categories"] = sorted((c.external_id, c.name) for c in product.categories.all())
        row["variants"] = sorted(
            (v.external_id, v.sku, v.title, v.price, v.inventory_quantity) for v in product.variants.all()
        )
        row["seen"] = product.last_seen_run_id is not None
        rows[product.external_id] = row
    return rows


def _connection(acme, shop, name: str) -> SourceConnection:
    return SourceConnection.objects.create(
        tenant=acme,
        name=name,
        source="woocommerce",
        base_url=shop.url,
        currency="EUR",
        credentials={"consumer_key": KEY, "consumer_secret": SECRET},
    )


def test_the_copy_path_writes_exactly_what_the_orm_path_writes(acme, shop, monkeypatch):
    copy_conn, orm_conn = _connection(acme, shop, "copy"), _connection(acme, shop, "orm")
    queries = []

    def orm(**kwargs):
        queries.append("orm")
        return bulk._upsert_orm(**kwargs)

    _catalogue(shop)
    with CaptureQueriesContext(db) as copy_sql:
        first = run_sync(copy_conn, mode="full")
    assert any(q["sql"].startswith("COPY _product_sync_rows") for q in copy_sql.captured_queries)
    with monkeypatch.context() as patch:
        patch.setattr(bulk, "upsert", orm)
        run_sync(orm_conn, mode="full")
    assert queries  # the ORM path did run
    assert first.created == 5
    assert _stored(copy_conn) == _stored(orm_conn)
    assert _stored(copy_conn)["1"]["title"] == AWKWARD and _stored(copy_conn)["1"]["description"] == AWKWARD
    assert len(_stored(copy_conn)["4"]["variants"]) == 2

    # A change at the source: renamed, re-categorised, a variant gone; the others unchanged.
    _catalogue(shop, changed=True)
    copy_run = run_sync(copy_conn, mode="full")
    with monkeypatch.context() as patch:
        patch.setattr(bulk, "upsert", orm)
        orm_run = run_sync(orm_conn, mode="full")
    assert (copy_run.updated, copy_run.unchanged) == (orm_run.updated, orm_run.unchanged) == (2, 3)
    assert _stored(copy_conn) == _stored(orm_conn)
    changed = _stored(copy_conn)["3"]
    assert (changed["title"], changed["source_updated_at"]) == ("Renamed", LATER)
    assert changed["synced"]["title"] == "Renamed" and changed["synced"]["categories"] == ["2", "3"]
    assert changed["categories"] == [("2", "Tea\tware"), ("3", "Sale")]
    assert _stored(copy_conn)["4"]["variants"] == [("41", "S\\1", "S\tx", 10, 3)]


def test_an_upsert_rewrites_updated_at_but_never_created_at(shop, woo):
    _catalogue(shop)
    run_sync(woo, mode="full")
    before = dict(Product.objects.filter(connection=woo).values_list("external_id", "created_at"))
    stamps = dict(Product.objects.filter(connection=woo).values_list("external_id", "updated_at"))
    _catalogue(shop, changed=True)
    run_sync(woo, mode="full")
    after = Product.objects.filter(connection=woo)
    assert dict(after.values_list("external_id", "created_at")) == before
    moved = {ext for ext, at in after.values_list("external_id", "updated_at") if at != stamps[ext]}
    assert moved == {"3", "4"}


def test_a_rerun_of_an_unchanged_catalogue_sends_no_write_at_all(shop, woo):
    recent = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=100)  # inside the overlap
    _catalogue(shop)
    for product in shop.products.values():
        product["date_modified_gmt"] = recent.replace(tzinfo=None).isoformat()
    run_sync(woo, mode="full")
    with CaptureQueriesContext(db) as captured:
        again = run_sync(woo, mode="delta")
    assert (again.unchanged, again.updated, again.created) == (5, 0, 0)
    tables = ("products_product", "products_variant", "products_category", "_product_sync_")
    writes = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().startswith(("COPY", "WITH", "INSERT", "UPDATE", "DELETE"))
        and any(t in q["sql"] for t in tables)
    ]
    assert writes == []


def test_a_page_that_fails_after_its_copy_loses_nothing_and_leaves_nothing_behind(shop, woo, monkeypatch, settings):
    """The COPY of page 2 went through, then its upsert failed: the page rolls back with its COPY;
    the retry resumes at page 2 and the temp table holds no stale row that a later page could write."""
    from products.services import sync_run

    shop.add(*(woo_product(i) for i in range(1, 7)))  # 3 pages of 2
    real = bulk._upsert_sql
    calls = []

    def failing_once() -> str:
        calls.append(1)
        return "SELECT no_such_function()" if len(calls) == 2 else real()

    monkeypatch.setattr(bulk, "_upsert_sql", failing_once)
    run = SyncRun.objects.create(connection=woo, mode="full")
    with pytest.raises(Exception, match="no_such_function"):
        sync_run(run_id=run.pk, last_attempt=False)
    run.refresh_from_db()
    assert (run.pages, run.created, run.cursor) == (1, 2, "2")
    assert sorted(Product.objects.filter(connection=woo).values_list("external_id", flat=True)) == ["1", "2"]

    with db.cursor() as cursor:  # the same session (and temp table) as the failed page
        cursor.execute(f"SELECT count(*) FROM {bulk.ROWS}")  # noqa: S608 -- our table
        assert cursor.fetchone()[0] == 0
    result = sync_run(run_id=run.pk, last_attempt=False)
    assert result["status"] == "succeeded" and result["created"] == 6
    assert sorted(Product.objects.filter(connection=woo).values_list("external_id", flat=True)) == [
        str(i) for i in range(1, 7)
    ]
    assert Product.categories.through.objects.filter(product__connection=woo).count() == 6
    assert not Variant.objects.filter(product__connection=woo).exists()
