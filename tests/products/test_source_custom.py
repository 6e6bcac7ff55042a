"""The custom JSON feed: next-link paging through the guarded client, schema errors, skipped items."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from werkzeug import Response

from products.errors import SyncFailed
from products.models import Product, SourceConnection, SyncRun, Variant
from products.services import sync_run
from tests.products.conftest import run_sync

pytestmark = pytest.mark.django_db

TOKEN = "feed-token-acme-0123456789"


def item(pid, **extra):
    return {
        "id": pid,
        "title": f"Item {pid}",
        "description": "<p>d</p>",
        "handle": f"item-{pid}",
        "status": "active",
        "price": "4.20",
        "currency": "usd",
        "inventory_quantity": 3,
        "categories": [{"id": "c1", "name": "Cups"}],
        "variants": [],
        "updated_at": "2026-10-01T08:00:00Z",
        **extra,
    }


@pytest.fixture
def feed(acme, httpserver):
    return SourceConnection.objects.create(
        tenant=acme, source="custom", base_url=httpserver.url_for("/feed.json"), credentials={"token": TOKEN}
    )


def serve(httpserver, path, body, *, query_string=None, status=200):
    httpserver.expect_request(path, query_string=query_string).respond_with_data(
        json.dumps(body), status=status, content_type="application/json"
    )


def test_it_follows_next_links_and_stores_every_page(feed, httpserver):
    serve(
        httpserver,
        "/feed.json",
        {
            "products": [
                item(1),
                item(2, variants=[{"id": "v1", "sku": "CUP-S", "title": "Small", "price": 4, "inventory_quantity": 1}]),
            ],
            "next": httpserver.url_for("/feed.json") + "?page=2",
        },
        query_string="",
    )
    serve(
        httpserver,
        "/feed.json",
        {"products": [item(3, price=None, inventory_quantity=None)], "next": None},
        query_string="page=2",
    )

    run = run_sync(feed, mode="full")

    assert run.status == "succeeded" and (run.created, run.pages) == (3, 2)
    assert Product.objects.get(external_id="2").currency == "USD"
    assert Product.objects.get(external_id="3").price is None
    assert Variant.objects.get().sku == "CUP-S" and Variant.objects.get().price == Decimal("4")
    assert all(req.headers.get("Authorization") == f"Bearer {TOKEN}" for req, _ in httpserver.log)


def test_a_delta_asks_for_updated_since(feed, httpserver):
    serve(httpserver, "/feed.json", {"products": [item(1)], "next": None})
    run_sync(feed, mode="full")
    httpserver.clear_log()
    run_sync(feed, mode="delta")
    ((request, _),) = httpserver.log
    assert "updated_since" in request.args


def test_a_malformed_item_is_skipped_with_its_reason(feed, httpserver):
    serve(
        httpserver,
        "/feed.json",
        {
            "products": [item(1), item(2, status="gone"), {"title": "no id"}, item(4, updated_at="yesterday")],
            "next": None,
        },
    )
    run = run_sync(feed, mode="full")
    assert run.created == 1 and run.errors == 3
    assert run.skipped == [
        {"external_id": "2", "reason": "status must be one of active, draft, archived"},
        {"external_id": "?", "reason": "missing or invalid id"},
        {"external_id": "4", "reason": "updated_at 'yesterday' is not an ISO 8601 time"},
    ]


def test_a_feed_that_does_not_follow_the_schema_fails_the_run_and_keeps_what_is_stored(feed, httpserver):
    Product.objects.create(tenant=feed.tenant, connection=feed, external_id="1", title="Kept")
    serve(httpserver, "/feed.json", [item(1)])
    run = SyncRun.objects.create(connection=feed, mode="full")
    with pytest.raises(SyncFailed):
        sync_run(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and 'not {"products": [...]' in run.error
    assert Product.objects.get().title == "Kept" and Product.objects.get().status == "active"


def test_a_next_link_is_checked_by_the_guard_again(feed, httpserver, settings):
    # Only the feed's own address is allowed: a next link to another loopback address is refused
    # before any connection, like one to an internal host would be.
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    port = httpserver.port
    serve(httpserver, "/feed.json", {"products": [item(1)], "next": f"http://127.0.0.2:{port}/feed.json?page=2"})
    run = SyncRun.objects.create(connection=feed, mode="full")
    with pytest.raises(SyncFailed):
        sync_run(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "127.0.0.2" in run.error and run.pages == 1
    assert len(httpserver.log) == 1 and Product.objects.count() == 1


def test_the_token_is_not_sent_to_another_origin(feed, httpserver):
    from pytest_httpserver import HTTPServer

    other = HTTPServer(host="127.0.0.1", port=0)
    other.start()
    try:
        other.expect_request("/more.json").respond_with_data(
            json.dumps({"products": [item(2)], "next": None}), content_type="application/json"
        )
        serve(httpserver, "/feed.json", {"products": [item(1)], "next": other.url_for("/more.json")})
        run = run_sync(feed, mode="full")
        assert run.created == 2
        ((request, _),) = other.log
        assert "Authorization" not in request.headers
    finally:
        other.stop()


def test_a_429_from_the_feed_defers_with_its_retry_after(feed, httpserver):
    from broxiva.ratelimit import DeferJob
    from products.jobs import product_sync_job

    httpserver.expect_request("/feed.json").respond_with_response(
        Response(
            json.dumps({"error": "slow down"}),
            status=429,
            headers={"Retry-After": "42"},
            content_type="application/json",
        )
    )
    run = SyncRun.objects.create(connection=feed, mode="full")
    with pytest.raises(DeferJob) as info:
        product_sync_job(sync_id=run.pk, tenant_id=feed.tenant_id, connection_id=feed.pk, source="custom", mode="full")
    assert info.value.seconds == 42
    run.refresh_from_db()
    assert run.status == "running" and run.error == ""
