"""Inbound product webhooks: signatures, duplicates, stale events, size, and the job they enqueue."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal

import pytest

from broxiva.queues import get_queue
from products.models import Product, SourceConnection, SyncRun
from products.services import sync_run
from tests.products.woo_server import woo_product

pytestmark = pytest.mark.django_db

SHOPIFY_SECRET = "shpss_acme_webhook_secret_0123456789"


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def shopify(acme):
    return SourceConnection.objects.create(
        tenant=acme,
        source="shopify",
        base_url="https://acme.myshopify.com",
        webhook_secret=SHOPIFY_SECRET,
        credentials={"access_token": "shpat_acme_0123456789abcdef"},
    )


def shopify_payload(pid=632910392, updated_at="2026-11-01T12:00:00-05:00"):
    return {
        "id": pid,
        "title": "IPod Nano - 8GB",
        "body_html": "<p>It's the small iPod.</p>",
        "vendor": "Apple",
        "product_type": "Cult Products",
        "handle": "ipod-nano",
        "updated_at": updated_at,
        "status": "active",
        "admin_graphql_api_id": f"gid://shopify/Product/{pid}",
        "variants": [],
    }


def post_shopify(
    client,
    connection,
    body: bytes,
    *,
    signature: str | None = None,
    webhook_id="b54557e4-bdd9-4b37",
    topic="products/update",
    **extra,
):
    headers = {
        "HTTP_X_SHOPIFY_TOPIC": topic,
        "HTTP_X_SHOPIFY_WEBHOOK_ID": webhook_id,
        "HTTP_X_SHOPIFY_SHOP_DOMAIN": "acme.myshopify.com",
        "HTTP_X_SHOPIFY_TRIGGERED_AT": "2026-11-01T17:00:00.000Z",
        **extra,
    }
    if signature is not None:
        headers["HTTP_X_SHOPIFY_HMAC_SHA256"] = signature
    return client.post(f"/webhooks/shopify/{connection.pk}/", data=body, content_type="application/json", **headers)


def product_jobs():
    queue = get_queue("product-sync")
    return [queue.fetch_job(job_id) for job_id in queue.job_ids]


def test_shopify_good_signature_enqueues_a_job_with_the_webhook_data(
    client, shopify, django_capture_on_commit_callbacks
):
    body = json.dumps(shopify_payload()).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_shopify(client, shopify, body, signature=sign(SHOPIFY_SECRET, body))

    assert response.status_code == 200 and response.json()["status"] == "accepted"
    run = SyncRun.objects.get()
    assert (run.connection_id, run.trigger, run.mode, run.status) == (shopify.pk, "webhook", "delta", "pending")
    (job,) = product_jobs()
    assert job.func_name == "products.jobs.product_sync_job"
    assert job.kwargs["sync_id"] == run.pk and job.kwargs["connection_id"] == shopify.pk
    data = job.kwargs["webhook_data"]
    assert data["topic"] == "products/update" and data["payload"]["id"] == 632910392
    assert data["delivery_id"] == "b54557e4-bdd9-4b37"
    assert "X-Shopify-Hmac-Sha256" not in data["headers"] and data["headers"]["X-Shopify-Topic"] == "products/update"
    assert SHOPIFY_SECRET not in json.dumps(job.kwargs) and "shpat_" not in json.dumps(job.kwargs)


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl", "signed-with-another-secret"])
def test_a_missing_or_wrong_signature_is_401_and_nothing_is_stored_or_enqueued(client, shopify, signature):
    body = json.dumps(shopify_payload()).encode()
    if signature == "signed-with-another-secret":
        signature = sign("another-secret", body)
    response = post_shopify(client, shopify, body, signature=signature)
    assert response.status_code == 401
    assert not SyncRun.objects.exists() and product_jobs() == []
    from broxiva.models import OutboxJob

    assert not OutboxJob.objects.exists()


def test_the_signature_covers_the_raw_body_byte_for_byte(client, shopify):
    body = json.dumps(shopify_payload()).encode()
    reformatted = json.dumps(shopify_payload(), indent=2).encode()  # same JSON, other bytes
    assert post_shopify(client, shopify, reformatted, signature=sign(SHOPIFY_SECRET, body)).status_code == 401


def test_a_duplicate_delivery_id_is_acknowledged_and_dropped(client, shopify, django_capture_on_commit_callbacks):
    body = json.dumps(shopify_payload()).encode()
    with django_capture_on_commit_callbacks(execute=True):
        first = post_shopify(client, shopify, body, signature=sign(SHOPIFY_SECRET, body))
        second = post_shopify(client, shopify, body, signature=sign(SHOPIFY_SECRET, body))
        other = post_shopify(client, shopify, body, signature=sign(SHOPIFY_SECRET, body), webhook_id="another-id")
    assert (first.status_code, second.status_code, other.status_code) == (200, 200, 200)
    assert second.json()["status"] == "duplicate"
    assert SyncRun.objects.count() == 2 and len(product_jobs()) == 2


def test_a_payload_older_than_the_stored_product_is_acknowledged_and_ignored(client, shopify):
    Product.objects.create(
        tenant=shopify.tenant,
        connection=shopify,
        external_id="632910392",
        title="IPod",
        source_updated_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
    )
    body = json.dumps(shopify_payload(updated_at="2026-11-01T12:00:00-05:00")).encode()
    response = post_shopify(client, shopify, body, signature=sign(SHOPIFY_SECRET, body))
    assert response.status_code == 200 and response.json()["status"] == "stale"
    assert not SyncRun.objects.exists()
    newer = json.dumps(shopify_payload(updated_at="2026-11-03T00:00:00Z")).encode()
    response = post_shopify(client, shopify, newer, signature=sign(SHOPIFY_SECRET, newer), webhook_id="newer")
    assert response.json()["status"] == "accepted"


def test_an_oversized_body_is_413_and_not_read_beyond_the_cap(client, shopify, settings):
    settings.PRODUCT_WEBHOOK_MAX_BYTES = 2048
    body = json.dumps({**shopify_payload(), "body_html": "x" * 4096}).encode()
    response = post_shopify(client, shopify, body, signature=sign(SHOPIFY_SECRET, body))
    assert response.status_code == 413 and not SyncRun.objects.exists()


def test_only_post_is_allowed(client, shopify):
    assert client.get(f"/webhooks/shopify/{shopify.pk}/").status_code == 405
    assert client.put(f"/webhooks/shopify/{shopify.pk}/").status_code == 405


def test_an_unknown_source_or_connection_is_404(client, shopify):
    body = b"{}"
    assert (
        client.post(f"/webhooks/shopify/{shopify.pk + 1}/", data=body, content_type="application/json").status_code
        == 404
    )
    assert (
        client.post(f"/webhooks/woocommerce/{shopify.pk}/", data=body, content_type="application/json").status_code
        == 404
    )
    assert (
        client.post(f"/webhooks/magento/{shopify.pk}/", data=body, content_type="application/json").status_code == 404
    )


def test_a_connection_without_a_secret_accepts_nothing(client, shopify):
    shopify.webhook_secret = ""
    shopify.save()
    body = json.dumps(shopify_payload()).encode()
    assert post_shopify(client, shopify, body, signature=sign("", body)).status_code == 401


def test_the_view_is_csrf_exempt_under_csrf_checks(shopify):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    body = json.dumps(shopify_payload()).encode()
    assert post_shopify(client, shopify, body, signature=sign(SHOPIFY_SECRET, body)).status_code == 200
    assert client.post("/admin/login/", {"username": "x", "password": "y"}).status_code == 403  # nothing else is


# --- WooCommerce, end to end: the webhook's job stores the product ------------------------------


def post_woo(client, connection, body: bytes, *, signature: str | None, delivery="101", topic="product.updated"):
    headers = {
        "HTTP_X_WC_WEBHOOK_TOPIC": topic,
        "HTTP_X_WC_WEBHOOK_DELIVERY_ID": delivery,
        "HTTP_X_WC_WEBHOOK_SOURCE": "https://shop.test/",
        "HTTP_X_WC_WEBHOOK_RESOURCE": "product",
        "HTTP_X_WC_WEBHOOK_EVENT": "updated",
    }
    if signature is not None:
        headers["HTTP_X_WC_WEBHOOK_SIGNATURE"] = signature
    return client.post(f"/webhooks/woocommerce/{connection.pk}/", data=body, content_type="application/json", **headers)


def run_webhook_job(job):
    from products.jobs import product_sync_job

    return product_sync_job(**job.kwargs)


def test_woocommerce_webhook_updates_the_product(client, woo, django_capture_on_commit_callbacks):
    body = json.dumps(woo_product(55, name="Hooked", price="7.50")).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_woo(client, woo, body, signature=sign(woo.webhook_secret, body))
    assert response.status_code == 200
    (job,) = product_jobs()
    result = run_webhook_job(job)
    assert result["status"] == "succeeded" and result["created"] == 1
    product = Product.objects.get(connection=woo, external_id="55")
    assert product.title == "Hooked" and str(product.price) == "7.5000"
    woo.refresh_from_db()
    assert woo.sync_cursor is None  # a webhook does not move the delta cursor


def test_woocommerce_delete_archives_the_product(client, woo, django_capture_on_commit_callbacks):
    Product.objects.create(tenant=woo.tenant, connection=woo, external_id="55", title="Doomed")
    body = json.dumps({"id": 55}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        post_woo(client, woo, body, signature=sign(woo.webhook_secret, body), topic="product.deleted")
    (job,) = product_jobs()
    assert run_webhook_job(job)["archived"] == 1
    assert Product.objects.get(external_id="55").status == "archived"


def test_woocommerce_ping_on_creation_is_answered_and_stores_nothing(client, woo):
    response = client.post(
        f"/webhooks/woocommerce/{woo.pk}/", data="webhook_id=17", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200 and not SyncRun.objects.exists()


def test_woocommerce_bad_signature_is_401(client, woo):
    body = json.dumps(woo_product(55)).encode()
    assert post_woo(client, woo, body, signature=sign("wrong", body)).status_code == 401
    assert not SyncRun.objects.exists()


def test_a_webhook_payload_that_is_not_a_product_fails_its_run_permanently(
    client, woo, django_capture_on_commit_callbacks
):
    body = json.dumps({"id": 55, "name": "no date"}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        post_woo(client, woo, body, signature=sign(woo.webhook_secret, body))
    run = SyncRun.objects.get()
    from products.errors import SyncFailed

    with pytest.raises(SyncFailed) as info:
        sync_run(run_id=run.pk, webhook_data=product_jobs()[0].kwargs["webhook_data"])
    run.refresh_from_db()
    assert info.value.transient is False and run.status == "failed" and "date_modified_gmt" in run.error
    assert not Product.objects.exists()


# --- BigCommerce and custom: their own proofs -------------------------------------------------


def test_bigcommerce_is_verified_by_its_secret_header(client, acme, settings, django_capture_on_commit_callbacks):
    connection = SourceConnection.objects.create(
        tenant=acme, source="bigcommerce", base_url="https://api.test", webhook_secret="bc-header-secret-0123456789"
    )
    body = json.dumps(
        {
            "scope": "store/product/updated",
            "store_id": "1025646",
            "hash": "3f9ea420af83450d7ef9f78b",
            "data": {"type": "product", "id": 140},
            "created_at": 1561479335,
            "producer": "stores/abc123",
        }
    ).encode()
    url = f"/webhooks/bigcommerce/{connection.pk}/"
    header = "HTTP_" + settings.PRODUCT_WEBHOOK_BIGCOMMERCE_HEADER.upper().replace("-", "_")
    assert client.post(url, data=body, content_type="application/json", **{header: "nope"}).status_code == 401
    assert client.post(url, data=body, content_type="application/json").status_code == 401
    with django_capture_on_commit_callbacks(execute=True):
        ok = client.post(url, data=body, content_type="application/json", **{header: "bc-header-secret-0123456789"})
    assert ok.status_code == 200
    assert product_jobs()[0].kwargs["webhook_data"]["topic"] == "store/product/updated"


def test_custom_webhook_is_signed_like_woocommerce_and_stores_the_product(
    client, acme, django_capture_on_commit_callbacks
):
    connection = SourceConnection.objects.create(
        tenant=acme,
        source="custom",
        base_url="https://feed.test/p.json",
        webhook_secret="custom-secret-0123456789",
        currency="USD",
    )
    body = json.dumps(
        {"id": "sku-1", "title": "Custom", "price": "3.00", "updated_at": "2026-11-01T00:00:00Z"}
    ).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/webhooks/custom/{connection.pk}/",
            data=body,
            content_type="application/json",
            HTTP_X_BROXIVA_SIGNATURE=sign("custom-secret-0123456789", body),
            HTTP_X_BROXIVA_TOPIC="product.updated",
            HTTP_X_BROXIVA_DELIVERY_ID="d-1",
        )
    assert response.status_code == 200
    run_webhook_job(product_jobs()[0])
    assert Product.objects.get(connection=connection, external_id="sku-1").currency == "USD"


# --- Shopify end to end: the view, the engine and the Shopify source's parser together ---------


def test_a_shopify_update_then_delete_webhook_stores_then_archives_the_product(
    client, shopify, django_capture_on_commit_callbacks
):
    payload = shopify_payload()
    payload["variants"] = [{"id": 808950810, "sku": "IPOD2008PINK", "title": "Pink", "price": "199.00",
                            "inventory_quantity": 10, "updated_at": payload["updated_at"]}]
    body = json.dumps(payload).encode()
    with django_capture_on_commit_callbacks(execute=True):
        post_shopify(client, shopify, body, signature=sign(SHOPIFY_SECRET, body))
    (job,) = product_jobs()
    sync_run(run_id=job.kwargs["sync_id"], webhook_data=job.kwargs["webhook_data"])

    product = Product.objects.get(connection=shopify)
    assert (product.external_id, product.title, product.status) == ("632910392", "IPod Nano - 8GB", "active")
    assert [(v.sku, v.price, v.inventory_quantity) for v in product.variants.all()] == [
        ("IPOD2008PINK", Decimal("199.00"), 10)]

    get_queue("product-sync").empty()
    deleted = json.dumps({"id": 632910392}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        post_shopify(client, shopify, deleted, signature=sign(SHOPIFY_SECRET, deleted), webhook_id="del-1",
                     topic="products/delete", HTTP_X_SHOPIFY_TRIGGERED_AT="2026-11-02T17:00:00.000Z")
    (job,) = product_jobs()
    sync_run(run_id=job.kwargs["sync_id"], webhook_data=job.kwargs["webhook_data"])

    product.refresh_from_db()
    assert (product.status, product.title, product.description) == (
        "archived", "IPod Nano - 8GB", "<p>It's the small iPod.</p>"), "a delete archives and blanks nothing"
