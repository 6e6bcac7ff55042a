"""The BigCommerce source against a local catalog v3 API on loopback (tests/products/bigcommerce_server.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pytest_httpserver import HTTPServer

from products.sources import bigcommerce
from products.sources.base import Connection, SourceAuthError, SourceError, SourceThrottled
from tests.products import bigcommerce_server as fake
from tests.products.bigcommerce_server import BigCommerceServer, product, webhook


@pytest.fixture(scope="module")
def httpd():
    # One server for the module (stopping one takes half a second); handlers are per test.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store(httpd, settings) -> BigCommerceServer:
    httpd.clear()
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.BIGCOMMERCE_PAGE_SIZE = 2
    settings.PRODUCT_SYNC_HTTP_TIMEOUT = 5
    yield BigCommerceServer(httpd)
    httpd.clear()


@pytest.fixture
def source() -> bigcommerce.BigCommerceSource:
    return bigcommerce.BigCommerceSource()


def connect(store: BigCommerceServer, token: str = fake.TOKEN, store_hash: str = fake.STORE_HASH) -> Connection:
    return Connection(
        id=9, base_url=store.base_url, credentials={"access_token": token, "store_hash": store_hash}, currency="GBP"
    )


def fetch_all(source, conn, *, mode="full", since=None):
    pages, cursor = [], None
    while True:
        page = source.fetch_page(conn, mode=mode, since=since, cursor=cursor)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_it_lists_every_product_over_several_pages_with_cursors(store, source):
    store.products = [product(n) for n in (5, 1, 3, 2, 4)]

    pages = fetch_all(source, connect(store))

    assert [[p.external_id for p in page.products] for page in pages] == [["1", "2"], ["3", "4"], ["5"]]
    calls = store.product_calls()
    assert [c.get("id:greater") for c in calls] == [None, "2", "4"]
    assert all((c["include"], c["limit"], c["sort"], c["direction"]) == ("variants", "2", "id", "asc") for c in calls)
    assert all("date_modified:min" not in c for c in calls)
    first = pages[0].products[0]
    assert first.title == "Orbit Terrarium 1"
    assert first.description == "<p>Terrarium number <em>1</em></p>"
    assert first.handle == "orbit-terrarium-1"
    assert first.status == "active"
    assert first.updated_at == dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)
    assert first.price == Decimal("25") and isinstance(first.price, Decimal)
    assert first.currency == "GBP"
    assert first.inventory_quantity == 11
    assert [(c.external_id, c.name) for c in first.categories] == [("23", "Garden"), ("18", "Shop All")]
    assert [(v.external_id, v.sku, v.title, v.price, v.inventory_quantity) for v in first.variants] == [
        ("11", "BC-1-S", "Small", Decimal("25"), 5),  # no own price: the product's applies
        ("12", "BC-1-L", "Large", Decimal("27.5"), 6),
    ]
    assert set(store.tokens) == {fake.TOKEN}


def test_it_reads_prices_as_exact_decimals(store, source):
    item = product(1)
    item["price"] = 0.1  # a float would come back as 0.1000000000000000055511151231257827
    store.products = [item]

    (read,) = source.fetch_page(connect(store), mode="full", since=None, cursor=None).products

    assert read.price == Decimal("0.1")


def test_a_product_deleted_mid_run_does_not_hide_another(store, source):
    store.products = [product(n) for n in range(1, 6)]
    conn = connect(store)
    first = source.fetch_page(conn, mode="full", since=None, cursor=None)

    store.products = [p for p in store.products if p["id"] != 1]  # deleted at the source meanwhile
    rest: list[str] = []
    cursor = first.next_cursor
    while cursor is not None:
        page = source.fetch_page(conn, mode="full", since=None, cursor=cursor)
        rest.extend(p.external_id for p in page.products)
        cursor = page.next_cursor

    # Page numbers would have shifted product 3 onto page 1 and skipped it.
    assert rest == ["3", "4", "5"]


def test_it_asks_for_products_modified_since_in_a_delta(store, source):
    store.products = [
        product(1, modified="2025-12-31T21:59:59+00:00"),
        product(2, modified="2025-12-31T22:00:00+00:00"),
        product(3, modified="2026-01-04T08:00:00-05:00"),
    ]
    since = dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    pages = fetch_all(source, connect(store), mode="delta", since=since)

    assert store.product_calls()[0]["date_modified:min"] == "2025-12-31T22:00:00+00:00"
    items = [p for page in pages for p in page.products]
    assert [p.external_id for p in items] == ["2", "3"]
    assert items[1].updated_at == dt.datetime(2026, 1, 4, 13, 0, tzinfo=dt.UTC)


def test_it_asks_only_for_quantities_in_inventory_only_mode(store, source):
    store.products = [product(1)]

    (item,) = source.fetch_page(connect(store), mode="inventory_only", since=None, cursor=None).products

    assert store.product_calls()[0]["include_fields"] == "inventory_level,date_modified"
    assert not any(path == "/catalog/categories" for path, _ in store.requests)
    assert (item.external_id, item.inventory_quantity, item.title, item.price) == ("1", 11, "", None)
    assert [(v.external_id, v.inventory_quantity, v.sku) for v in item.variants] == [("11", 5, ""), ("12", 6, "")]


def test_it_maps_an_invisible_product_to_draft(store, source):
    store.products = [product(1, visible=False)]

    (item,) = source.fetch_page(connect(store), mode="full", since=None, cursor=None).products

    assert item.status == "draft"


def test_it_looks_up_category_names_once_per_page(store, source, settings):
    settings.BIGCOMMERCE_PAGE_SIZE = 10
    store.products = [product(1, categories=[23]), product(2, categories=[24, 23]), product(3, categories=[99])]

    page = source.fetch_page(connect(store), mode="full", since=None, cursor=None)

    lookups = [params for path, params in store.requests if path == "/catalog/categories"]
    assert [params["id:in"] for params in lookups] == ["23,24,99"]
    assert [[c.name for c in p.categories] for p in page.products] == [
        ["Garden"],
        ["Kitchen", "Garden"],
        ["Category 99"],
    ]


def test_it_skips_a_malformed_product_with_its_id_and_reason_and_keeps_the_rest(store, source, settings):
    settings.BIGCOMMERCE_PAGE_SIZE = 10
    bad_price = product(2)
    bad_price["price"] = "free"
    bad_date = product(3, modified="sometime")
    bad_variant = product(5)
    bad_variant["variants"][0]["inventory_level"] = 2.5
    store.products = [product(1), bad_price, bad_date, product(4), bad_variant, {"id": "six", "name": "broken"}]

    page = source.fetch_page(connect(store), mode="full", since=None, cursor=None)

    assert [p.external_id for p in page.products] == ["1", "4"]
    reasons = {s.external_id: s.reason for s in page.skipped}
    assert reasons["2"] == "price 'free' is not a price"
    assert reasons["3"].startswith("date_modified 'sometime' is not a date and time")
    assert reasons["5"] == "variant 1 inventory_level '2.5' is not a whole number"
    assert reasons["six"] == "id 'six' is not a product id"


def test_it_fails_with_bigcommerces_message_and_no_token_on_401(store, source):
    with pytest.raises(SourceAuthError) as caught:
        source.fetch_page(connect(store, token="bc-wrong-token-value"), mode="full", since=None, cursor=None)

    assert "the X-Auth-Token is invalid or revoked" in str(caught.value)
    assert "bc-wrong-token-value" not in str(caught.value)
    assert caught.value.transient is False


def test_it_fails_with_the_scope_message_on_403_without_echoing_the_token(store, source):
    store.answer_next(403, {"status": 403, "title": f"Token {fake.TOKEN} lacks a required scope", "errors": {}})

    with pytest.raises(SourceAuthError) as caught:
        source.fetch_page(connect(store), mode="full", since=None, cursor=None)

    assert "lacks a required scope" in str(caught.value)
    assert fake.TOKEN not in str(caught.value)


def test_it_defers_on_429_for_the_reset_window_bigcommerce_gives(store, source):
    store.answer_next(
        429,
        {"status": 429, "title": "Too many requests"},
        headers={"X-Rate-Limit-Time-Reset-Ms": "4500", "X-Rate-Limit-Requests-Left": "0"},
    )

    with pytest.raises(SourceThrottled) as caught:
        source.fetch_page(connect(store), mode="full", since=None, cursor=None)

    assert caught.value.retry_after == pytest.approx(4.5)


def test_it_defers_on_429_for_the_retry_after_when_no_reset_header(store, source):
    store.answer_next(429, {"status": 429, "title": "Too many requests"}, headers={"Retry-After": "12"})

    with pytest.raises(SourceThrottled) as caught:
        source.fetch_page(connect(store), mode="full", since=None, cursor=None)

    assert caught.value.retry_after == 12


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_it_calls_a_5xx_transient(store, source, status):
    store.answer_next(status, {"status": status, "title": "Internal Server Error"})

    with pytest.raises(SourceError) as caught:
        source.fetch_page(connect(store), mode="full", since=None, cursor=None)

    assert caught.value.transient is True


def test_it_calls_another_4xx_permanent_with_the_message(store, source):
    store.answer_next(422, {"status": 422, "title": "Input is invalid", "errors": {"limit": "must be <= 250"}})

    with pytest.raises(SourceError) as caught:
        source.fetch_page(connect(store), mode="full", since=None, cursor=None)

    assert caught.value.transient is False
    assert "Input is invalid; limit: must be <= 250" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    ["<html><title>Maintenance</title></html>", '{"data": "nothing"}', '{"data": [], "meta": {}}', "[1, 2]"],
)
def test_it_refuses_a_response_that_is_no_product_listing(store, source, body):
    store.answer_next(200, body)

    with pytest.raises(SourceError) as caught:
        source.fetch_page(connect(store), mode="full", since=None, cursor=None)

    assert caught.value.transient is False


def test_it_refuses_a_cursor_that_is_no_product_id(store, source):
    with pytest.raises(SourceError, match="not a product id"):
        source.fetch_page(connect(store), mode="full", since=None, cursor="../../v2/orders")
    assert store.requests == []


def test_it_refuses_a_store_hash_that_would_change_the_path(store, source):
    with pytest.raises(SourceAuthError, match="store_hash"):
        source.fetch_page(connect(store, store_hash="abc/../x"), mode="full", since=None, cursor=None)
    assert store.requests == []


def test_it_refuses_a_loopback_api_url_when_the_guard_allows_none(store, source, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []

    with pytest.raises(SourceError) as caught:
        source.fetch_page(connect(store), mode="full", since=None, cursor=None)

    assert caught.value.transient is False
    assert "loopback" in str(caught.value)
    assert store.requests == []


def test_it_uses_the_configured_api_origin_when_the_connection_has_none(store, source, settings):
    settings.BIGCOMMERCE_API_URL = store.base_url
    store.products = [product(1)]
    conn = Connection(id=9, base_url="", credentials={"access_token": fake.TOKEN, "store_hash": fake.STORE_HASH})

    page = source.fetch_page(conn, mode="full", since=None, cursor=None)

    assert [p.external_id for p in page.products] == ["1"]


def test_it_fetches_the_product_a_webhook_names(store, source):
    store.products = [product(1), product(3, name="Hanging Planter")]

    (item,) = source.parse_webhook(connect(store), {}, webhook("store/product/updated", 3))

    assert (item.external_id, item.title) == ("3", "Hanging Planter")
    assert [v.external_id for v in item.variants] == ["31", "32"]
    assert [c.name for c in item.categories] == ["Garden", "Shop All"]
    assert ("/catalog/products/3", {"include": "variants"}) in store.requests


def test_it_returns_nothing_for_a_product_gone_before_its_webhook_was_read(store, source):
    assert source.parse_webhook(connect(store), {}, webhook("store/product/updated", 404)) == []


def test_it_reads_a_delete_webhook_as_archived_without_a_call(store, source):
    (item,) = source.parse_webhook(connect(store), {}, webhook("store/product/deleted", 3))

    assert (item.external_id, item.status) == ("3", "archived")
    assert item.updated_at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert store.requests == []


@pytest.mark.parametrize(
    "payload, message",
    [
        (webhook("store/order/created"), "not a product event"),
        ({**webhook(), "data": {"type": "product"}}, "no numeric product id"),
        ({**webhook(), "data": {"type": "category", "id": 3}}, "not a product"),
        (webhook(store_hash="otherstore"), "another store"),
        ("not json object", "not a JSON object"),
    ],
)
def test_it_refuses_a_webhook_that_is_no_product_event_of_this_store(store, source, payload, message):
    with pytest.raises(ValueError, match=message):
        source.parse_webhook(connect(store), {}, payload)
    assert store.requests == []


def test_a_webhook_fetch_fails_like_a_listing_on_401(store, source):
    with pytest.raises(SourceAuthError, match="invalid or revoked"):
        source.parse_webhook(connect(store, token="bc-wrong-token-value"), {}, webhook())
