"""The Shopify source against a local GraphQL Admin API on loopback (tests/products/shopify_server.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pytest_httpserver import HTTPServer

from products.sources import shopify
from products.sources.base import Connection, SourceAuthError, SourceError, SourceThrottled
from tests.products import shopify_server as fake
from tests.products.shopify_server import ShopifyServer, product, variant, webhook_product


class Sleeps:
    """A sleep function that records what it was asked to wait, and a clock the test moves."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 1000.0

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def httpd():
    # One server for the module (stopping one takes half a second); handlers are per test.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(httpd):
    httpd.clear()
    yield httpd
    httpd.clear()


@pytest.fixture
def shop(server, settings) -> ShopifyServer:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.SHOPIFY_API_VERSION = fake.VERSION
    settings.SHOPIFY_PAGE_SIZE = 2
    settings.SHOPIFY_VARIANTS_PER_PRODUCT = 100
    settings.SHOPIFY_MAX_THROTTLE_WAIT = 10
    settings.PRODUCT_SYNC_HTTP_TIMEOUT = 5
    return ShopifyServer(server)


@pytest.fixture
def clock() -> Sleeps:
    return Sleeps()


@pytest.fixture
def source(clock) -> shopify.ShopifySource:
    return shopify.ShopifySource(sleep=clock.sleep, clock=clock.clock)


def connect(shop: ShopifyServer, token: str = fake.TOKEN) -> Connection:
    return Connection(id=7, base_url=shop.base_url, credentials={"access_token": token}, currency="USD")


def fetch_all(source, conn, *, mode="full", since=None):
    pages, cursor = [], None
    while True:
        page = source.fetch_page(conn, mode=mode, since=since, cursor=cursor)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_it_lists_every_product_over_several_pages_with_cursors(shop, source):
    shop.products = [product(n, updated=f"2026-01-0{n}T10:00:00Z") for n in (3, 1, 5, 2, 4)]

    pages = fetch_all(source, connect(shop))

    assert [[p.external_id for p in page.products] for page in pages] == [["1", "2"], ["3", "4"], ["5"]]
    # Each call after the first sent the endCursor the previous page returned.
    assert [body["variables"]["after"] for body in shop.received] == [None, pages[0].next_cursor, pages[1].next_cursor]
    assert all(body["variables"]["query"] is None for body in shop.received)  # full: no search filter
    assert "sortKey: UPDATED_AT" in shop.received[0]["query"]
    first = pages[0].products[0]
    assert first.title == "Product 1"
    assert first.description == "<p>Description of <strong>product 1</strong></p>"
    assert first.handle == "product-1"
    assert first.status == "active"
    assert first.updated_at == dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)
    assert first.price == Decimal("19.99") and isinstance(first.price, Decimal)  # the lowest variant price
    assert first.currency == "EUR"  # the shop's currency, from the same query
    assert first.inventory_quantity == 7
    assert [(c.external_id, c.name) for c in first.categories] == [("Shoes", "Shoes")]
    assert [(v.external_id, v.sku, v.title, v.price, v.inventory_quantity) for v in first.variants] == [
        ("11", "SKU-1-S", "Small", Decimal("19.99"), 3),
        ("12", "SKU-1-L", "Large", Decimal("24.50"), 4),
    ]
    assert shop.tokens == [fake.TOKEN] * 3


def test_it_resumes_after_the_last_saved_page_from_the_cursor(shop, source):
    shop.products = [product(n, updated=f"2026-01-0{n}T10:00:00Z") for n in range(1, 6)]
    first = source.fetch_page(connect(shop), mode="full", since=None, cursor=None)

    # A new job (a new source object, as after a worker was killed) continues from the cursor alone.
    resumed = shopify.ShopifySource().fetch_page(connect(shop), mode="full", since=None, cursor=first.next_cursor)

    assert [p.external_id for p in first.products] == ["1", "2"]
    assert [p.external_id for p in resumed.products] == ["3", "4"]


def test_it_asks_for_products_updated_after_since_in_a_delta(shop, source):
    shop.products = [
        product(1, updated="2025-12-31T21:59:59Z"),
        product(2, updated="2025-12-31T22:00:01Z"),
        product(3, updated="2026-01-03T08:00:00Z"),
    ]
    since = dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    pages = fetch_all(source, connect(shop), mode="delta", since=since)

    assert shop.received[0]["variables"]["query"] == "updated_at:>'2025-12-31T22:00:00Z'"
    assert [p.external_id for page in pages for p in page.products] == ["2", "3"]


def test_it_asks_only_for_quantities_in_inventory_only_mode(shop, source):
    shop.products = [product(1, updated="2026-01-01T10:00:00Z")]

    page = source.fetch_page(connect(shop), mode="inventory_only", since=None, cursor=None)

    query = shop.received[0]["query"]
    for name in ("descriptionHtml", "title", "handle", "status", "productType", "price", "sku"):
        assert name not in query
    for name in ("updatedAt", "totalInventory", "inventoryQuantity"):
        assert name in query
    (item,) = page.products
    assert (item.external_id, item.inventory_quantity, item.title, item.price) == ("1", 7, "", None)
    assert [(v.external_id, v.inventory_quantity) for v in item.variants] == [("11", 3), ("12", 4)]


def test_it_skips_a_malformed_product_with_its_id_and_reason_and_keeps_the_rest(shop, source, settings):
    settings.SHOPIFY_PAGE_SIZE = 10
    bad_price = product(2, updated="2026-01-02T10:00:00Z")
    bad_price["variants"]["nodes"][1]["price"] = "twelve"
    no_time = product(3, updated="2026-01-03T10:00:00Z")
    no_time["updatedAt"] = "yesterday"
    bad_status = product(5, updated="2026-01-05T10:00:00Z", status="SOLD_OUT")
    no_id = product(6, updated="2026-01-06T10:00:00Z")
    no_id["id"] = "gid://shopify/Collection/6"
    shop.products = [
        product(1, updated="2026-01-01T10:00:00Z"),
        bad_price,
        no_time,
        product(4, updated="2026-01-04T10:00:00Z"),
        bad_status,
        no_id,
    ]

    page = source.fetch_page(connect(shop), mode="full", since=None, cursor=None)

    assert [p.external_id for p in page.products] == ["1", "4"]
    reasons = {s.external_id: s.reason for s in page.skipped}
    assert reasons["2"] == "variant 2 price 'twelve' is not a price"
    assert reasons["3"].startswith("updatedAt 'yesterday' is not a date and time")
    assert reasons["5"] == "unknown status 'SOLD_OUT'"
    assert "is not a Shopify id" in reasons["gid://shopify/Collection/6"]


def test_it_skips_a_product_with_more_variants_than_it_asked_for(shop, source, settings):
    settings.SHOPIFY_VARIANTS_PER_PRODUCT = 2
    many = [variant(30 + n, sku=f"V{n}", title=f"V{n}", price="5.00", quantity=1) for n in range(3)]
    shop.products = [
        product(1, updated="2026-01-01T10:00:00Z"),
        product(3, updated="2026-01-03T10:00:00Z", variants=many),
    ]

    page = source.fetch_page(connect(shop), mode="full", since=None, cursor=None)

    assert shop.received[0]["variables"]["variants"] == 2
    assert [p.external_id for p in page.products] == ["1"]
    assert [(s.external_id, s.reason) for s in page.skipped] == [
        ("3", "has more than 2 variants (raise SHOPIFY_VARIANTS_PER_PRODUCT to read them all)")
    ]


def test_it_fails_with_shopifys_message_and_no_token_on_401(shop, source):
    with pytest.raises(SourceAuthError) as caught:
        source.fetch_page(connect(shop, token="shpat_wrong_token_value"), mode="full", since=None, cursor=None)

    assert fake.INVALID_TOKEN in str(caught.value)
    assert "shpat_wrong_token_value" not in str(caught.value)
    assert caught.value.transient is False


def test_it_never_repeats_the_token_even_when_the_source_echoes_it(shop, source):
    shop.answer_next(403, {"errors": f"Token {fake.TOKEN} lacks the read_products scope"})

    with pytest.raises(SourceAuthError) as caught:
        source.fetch_page(connect(shop), mode="full", since=None, cursor=None)

    assert fake.TOKEN not in str(caught.value)
    assert "lacks the read_products scope" in str(caught.value)


def test_it_turns_access_denied_into_an_auth_error(shop, source):
    shop.answer_next(
        200,
        {
            "errors": [
                {
                    "message": "Access denied for products field. Required access: `read_products` access scope.",
                    "extensions": {"code": "ACCESS_DENIED"},
                }
            ]
        },
    )

    with pytest.raises(SourceAuthError, match="Access denied for products field"):
        source.fetch_page(connect(shop), mode="full", since=None, cursor=None)


def test_it_defers_on_429_with_the_retry_after(shop, source):
    shop.answer_next(429, {"errors": "Exceeded 2 calls per second for api client."}, headers={"Retry-After": "7"})

    with pytest.raises(SourceThrottled) as caught:
        source.fetch_page(connect(shop), mode="full", since=None, cursor=None)

    assert caught.value.retry_after == 7
    assert caught.value.transient is True


@pytest.mark.parametrize("status", [500, 502, 503])
def test_it_calls_a_5xx_transient(shop, source, status):
    shop.answer_next(status, {"errors": "Internal Server Error"})

    with pytest.raises(SourceError) as caught:
        source.fetch_page(connect(shop), mode="full", since=None, cursor=None)

    assert caught.value.transient is True
    assert f"HTTP {status}" in str(caught.value)


def test_it_calls_a_refused_connection_transient(source, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    closed = HTTPServer(host="127.0.0.1", port=0)
    closed.start()
    url = closed.url_for("/").rstrip("/")
    closed.stop()

    with pytest.raises(SourceError) as caught:
        source.fetch_page(
            Connection(id=1, base_url=url, credentials={"access_token": fake.TOKEN}),
            mode="full",
            since=None,
            cursor=None,
        )

    assert caught.value.transient is True


@pytest.mark.parametrize(
    "body, content_type",
    [
        ("<html><title>Shop unavailable</title></html>", "text/html"),
        ('{"data": {"shop": {"currencyCode": "EUR"}}}', "application/json"),
        ('{"data": {"products": {"nodes": "none", "pageInfo": {}}}}', "application/json"),
    ],
)
def test_it_refuses_a_response_that_is_no_product_listing(shop, source, body, content_type):
    shop.answer_next(200, body, content_type=content_type)

    with pytest.raises(SourceError) as caught:
        source.fetch_page(connect(shop), mode="full", since=None, cursor=None)

    assert caught.value.transient is False


def two_pages_draining_the_bucket(shop, source, conn):
    """Fetch page 1 (plenty of points), then page 2 leaving 196 points reported (222 - 13 - 13)."""
    shop.products = [product(n, updated=f"2026-01-0{n}T10:00:00Z") for n in range(1, 8)]
    shop.restore_rate = 10.0
    shop.available = 1000
    first = source.fetch_page(conn, mode="full", since=None, cursor=None)
    shop.available = 209  # just what page 2 asks for (3 + 2 x 103); its actual cost is 13
    return source.fetch_page(conn, mode="full", since=None, cursor=first.next_cursor)


def test_it_waits_for_the_bucket_to_refill_before_the_next_page(shop, source, clock):
    conn = connect(shop)
    second = two_pages_draining_the_bucket(shop, source, conn)
    assert clock.waits == []  # 987 points were left for page 2
    shop.available = 1000  # the server has refilled meanwhile; the client only knows "196 left"

    third = source.fetch_page(conn, mode="full", since=None, cursor=second.next_cursor)

    # Page 3 asks for 209 points, 196 were left, Shopify restores 10 a second: 1.3 s.
    assert clock.waits == [pytest.approx(1.3)]
    assert [p.external_id for p in third.products] == ["5", "6"]


def test_it_counts_the_refill_since_the_last_answer(shop, source, clock):
    conn = connect(shop)
    second = two_pages_draining_the_bucket(shop, source, conn)
    shop.available = 1000
    clock.now += 1.0  # a second went by saving page 2: 10 points restored, 206 available

    source.fetch_page(conn, mode="full", since=None, cursor=second.next_cursor)

    assert clock.waits == [pytest.approx(0.3)]


def test_it_defers_instead_of_waiting_longer_than_the_setting(shop, source, clock, settings):
    settings.SHOPIFY_MAX_THROTTLE_WAIT = 1
    conn = connect(shop)
    second = two_pages_draining_the_bucket(shop, source, conn)
    calls = len(shop.received)

    with pytest.raises(SourceThrottled) as caught:
        source.fetch_page(conn, mode="full", since=None, cursor=second.next_cursor)

    assert caught.value.retry_after == pytest.approx(1.3)
    assert clock.waits == []
    assert len(shop.received) == calls  # no query was sent: the bucket could not hold it


def test_it_turns_a_throttled_error_into_a_deferral_with_the_computed_wait(shop, source):
    shop.products = [product(1)]
    shop.available = 9  # requested 209, restored at 100 points a second

    with pytest.raises(SourceThrottled) as caught:
        source.fetch_page(connect(shop), mode="full", since=None, cursor=None)

    assert caught.value.retry_after == pytest.approx((209 - 9) / 100)
    assert "Throttled" in str(caught.value)


def test_it_cuts_the_page_so_the_query_stays_under_shopifys_cost_limit(settings):
    settings.SHOPIFY_PAGE_SIZE = 250
    settings.SHOPIFY_VARIANTS_PER_PRODUCT = 100

    size = shopify.page_size()

    assert shopify.estimated_cost(first=size, variants=100) <= shopify.MAX_QUERY_COST
    assert shopify.estimated_cost(first=size + 1, variants=100) > shopify.MAX_QUERY_COST


def test_it_refuses_a_loopback_shop_url_when_the_guard_allows_none(shop, source, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []

    with pytest.raises(SourceError) as caught:
        source.fetch_page(connect(shop), mode="full", since=None, cursor=None)

    assert caught.value.transient is False
    assert "loopback" in str(caught.value)
    assert shop.received == [] and shop.tokens == []  # nothing reached the server


def test_it_does_not_follow_a_redirect_with_the_token(shop, source, server):
    other = HTTPServer(host="127.0.0.1", port=0)
    other.expect_request("/admin/api/2025-10/graphql.json").respond_with_json({"data": {}})
    other.start()
    try:
        shop.answer_next(301, "", headers={"Location": other.url_for("/admin/api/2025-10/graphql.json")})

        with pytest.raises(SourceError) as caught:
            source.fetch_page(connect(shop), mode="full", since=None, cursor=None)

        assert caught.value.transient is False
        assert "redirect" in str(caught.value)
        assert other.log == []
    finally:
        other.stop()


def test_it_reads_a_product_update_webhook(shop, source):
    conn = connect(shop)

    (item,) = source.parse_webhook(conn, {"X-Shopify-Topic": "products/update"}, webhook_product())

    assert item.external_id == "632910392"
    assert item.title == "IPod Nano - 8GB"
    assert item.description == "<p>It's the small iPod with one very big idea: Video.</p>"
    assert item.handle == "ipod-nano"
    assert item.status == "active"
    assert item.updated_at == dt.datetime(2026, 2, 1, 14, 15, tzinfo=dt.UTC)
    assert item.price == Decimal("189.00")
    assert item.currency == "USD"  # the connection's: REST product payloads carry none
    assert item.inventory_quantity == 30
    assert [c.name for c in item.categories] == ["Cult Products"]
    assert [(v.external_id, v.sku, v.price, v.inventory_quantity) for v in item.variants] == [
        ("808950810", "IPOD2008PINK", Decimal("199.00"), 10),
        ("49148385", "IPOD2008RED", Decimal("189.00"), 20),
    ]


def test_a_webhook_and_the_listing_name_a_product_and_its_variants_alike(shop, source):
    shop.products = [
        product(632910392, variants=[variant(808950810, sku="IPOD2008PINK", title="Pink", price="199.00", quantity=10)])
    ]

    (listed,) = source.fetch_page(connect(shop), mode="full", since=None, cursor=None).products
    (hooked,) = source.parse_webhook(connect(shop), {"X-Shopify-Topic": "products/update"}, webhook_product())

    assert listed.external_id == hooked.external_id
    assert listed.variants[0].external_id == hooked.variants[0].external_id


def test_it_reads_a_product_delete_webhook_as_archived(shop, source):
    headers = {"x-shopify-topic": "products/delete", "X-Shopify-Triggered-At": "2026-02-01T10:00:00.123Z"}

    (item,) = source.parse_webhook(connect(shop), headers, {"id": 632910392})

    assert (item.external_id, item.status) == ("632910392", "archived")
    assert item.updated_at == dt.datetime(2026, 2, 1, 10, 0, 0, 123000, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "headers, payload, message",
    [
        ({"X-Shopify-Topic": "orders/create"}, webhook_product(), "not a product event"),
        ({"X-Shopify-Topic": "products/update"}, ["not", "an", "object"], "not a JSON object"),
        ({"X-Shopify-Topic": "products/update"}, {"title": "no id"}, "no numeric product id"),
        ({"X-Shopify-Topic": "products/update"}, {**webhook_product(), "updated_at": "soon"}, "updated_at"),
        ({"X-Shopify-Topic": "products/update"}, {**webhook_product(), "variants": "many"}, "variants"),
    ],
)
def test_it_refuses_a_webhook_that_is_no_readable_product(shop, source, headers, payload, message):
    with pytest.raises(ValueError, match=message):
        source.parse_webhook(connect(shop), headers, payload)


def test_it_refuses_a_connection_without_a_token(shop, source):
    with pytest.raises(SourceAuthError, match="no access_token"):
        source.fetch_page(
            Connection(id=1, base_url=shop.base_url, credentials={}), mode="full", since=None, cursor=None
        )
    assert shop.tokens == []
