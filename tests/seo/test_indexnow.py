"""IndexNow announcements against a local server answering 202, 422 and 429."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from werkzeug import Response

from products.models import Product
from seo.models import SitemapGeneration
from seo.services import generate_sitemaps
from tests.seo.helpers import add_products

pytestmark = pytest.mark.django_db
KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def indexnow(settings, httpserver):
    settings.INDEXNOW_KEY = KEY
    settings.INDEXNOW_URL = httpserver.url_for("/indexnow")
    return httpserver


def answer(httpserver, status: int, body: str = "") -> None:
    httpserver.expect_request("/indexnow", method="POST").respond_with_response(Response(body, status=status))


def posted(httpserver) -> list[dict]:
    return [json.loads(request.data) for request, _ in httpserver.log]


def test_it_announces_the_changed_urls_and_moves_the_watermark(indexnow, acme):
    anvil, rocket = add_products(acme, ["anvil", "rocket"])
    answer(indexnow, 202)
    first = generate_sitemaps(tenant_id=acme.pk, ping_search_engines=True)

    body = posted(indexnow)[0]
    assert body["host"] == "acme.broxiva.com" and body["key"] == KEY
    assert body["keyLocation"] == f"https://acme.broxiva.com/{KEY}.txt"
    assert sorted(body["urlList"]) == ["https://acme.broxiva.com/en/products/anvil",
                                       "https://acme.broxiva.com/en/products/rocket"]
    assert indexnow.log[0][0].headers["Content-Type"].startswith("application/json")
    assert (first.indexnow_status, first.indexnow_submitted, first.indexnow_http_status) == ("submitted", 2, 202)
    assert first.announced_until == first.started_at

    # Nothing changed since: nothing is sent. Then one product changes: only it is sent.
    Product.objects.filter(tenant=acme).update(updated_at=first.started_at - dt.timedelta(seconds=1))
    second = generate_sitemaps(tenant_id=acme.pk, ping_search_engines=True)
    assert second.indexnow_status == "nothing" and len(indexnow.log) == 1
    rocket.title = "Rocket, faster"
    rocket.save()
    third = generate_sitemaps(tenant_id=acme.pk, ping_search_engines=True)
    assert posted(indexnow)[1]["urlList"] == ["https://acme.broxiva.com/en/products/rocket"]
    assert third.indexnow_status == "submitted" and third.indexnow_submitted == 1


def test_a_422_is_permanent_recorded_and_does_not_fail_the_generation(indexnow, acme, caplog):
    add_products(acme, ["anvil"])
    answer(indexnow, 422, f"URLs do not match the host for key {KEY}")
    generation = generate_sitemaps(tenant_id=acme.pk, ping_search_engines=True)

    stored = SitemapGeneration.objects.get(pk=generation.pk)
    assert stored.status == "succeeded" and stored.published
    assert stored.indexnow_status == "rejected" and stored.indexnow_http_status == 422
    assert "HTTP 422" in stored.indexnow_error and "URLs do not match" in stored.indexnow_error
    assert KEY not in stored.indexnow_error and KEY not in caplog.text
    assert "HTTP 422" in caplog.text
    assert stored.announced_until == stored.started_at  # resending cannot help: not kept pending


def test_a_429_keeps_the_urls_pending_for_the_next_announcement(indexnow, acme):
    add_products(acme, ["anvil", "rocket"])
    answer(indexnow, 429)
    first = generate_sitemaps(tenant_id=acme.pk, ping_search_engines=True)
    assert first.status == "succeeded" and first.published
    assert (first.indexnow_status, first.indexnow_pending, first.indexnow_http_status) == ("pending", 2, 429)
    assert first.announced_until is None

    indexnow.clear()
    answer(indexnow, 202)
    second = generate_sitemaps(tenant_id=acme.pk, ping_search_engines=True)
    assert len(posted(indexnow)[0]["urlList"]) == 2  # the pending URLs go again, unchanged as they are
    assert second.indexnow_status == "submitted" and second.announced_until == second.started_at


def test_it_sends_at_most_the_batch_limit_per_request(indexnow, acme, monkeypatch):
    from seo.providers import indexnow as provider

    monkeypatch.setattr(provider, "MAX_URLS", 2)
    add_products(acme, ["a", "b", "c", "d", "e"])
    answer(indexnow, 200)
    generation = generate_sitemaps(tenant_id=acme.pk, ping_search_engines=True)
    assert [len(body["urlList"]) for body in posted(indexnow)] == [2, 2, 1]
    assert generation.indexnow_submitted == 5


def test_it_records_a_skip_without_a_key(settings, acme, httpserver):
    settings.INDEXNOW_KEY = ""
    add_products(acme, ["anvil"])
    generation = generate_sitemaps(tenant_id=acme.pk, ping_search_engines=True)
    assert generation.indexnow_status == "skipped" and "INDEXNOW_KEY" in generation.indexnow_error
    assert not httpserver.log


def test_an_unreachable_endpoint_keeps_the_urls_pending(settings, acme):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.INDEXNOW_KEY = KEY
    settings.INDEXNOW_URL = f"http://127.0.0.1:{port}/indexnow"
    add_products(acme, ["anvil"])
    generation = generate_sitemaps(tenant_id=acme.pk, ping_search_engines=True)
    assert generation.status == "succeeded" and generation.indexnow_status == "pending"
    assert generation.indexnow_pending == 1 and generation.announced_until is None
