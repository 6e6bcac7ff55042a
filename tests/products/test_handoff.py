"""New or changed title/description text goes to translations, once per field and other locale."""

from __future__ import annotations

import datetime as dt

import pytest

from products.models import Product
from tests.products.conftest import run_sync
from tests.products.woo_server import woo_product

pytestmark = pytest.mark.django_db


def test_created_products_ask_for_title_and_description_in_each_other_locale(shop, woo, translation_requests):
    shop.add(woo_product(1))
    run_sync(woo, mode="full")
    product = Product.objects.get()
    requested = {(c["field_name"], c["target_locale"]) for c in translation_requests}
    assert requested == {("title", "fr"), ("title", "de"), ("description", "fr"), ("description", "de")}
    title_fr = next(c for c in translation_requests if c["field_name"] == "title" and c["target_locale"] == "fr")
    assert title_fr == {
        "tenant_id": woo.tenant_id,
        "content_type": "product_title",
        "entity_id": str(product.pk),
        "field_name": "title",
        "source_locale": "en",
        "target_locale": "fr",
        "source_text": "Product 1",
    }


def test_only_the_changed_text_is_sent_and_nothing_when_text_is_unchanged(shop, woo, translation_requests):
    shop.add(woo_product(1), woo_product(2))
    run_sync(woo, mode="full")
    translation_requests.clear()
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    shop.add(woo_product(1, description="<p>New words</p>", modified=soon), woo_product(2, price="1.00", modified=soon))

    run_sync(woo, mode="delta")

    assert [(c["entity_id"], c["field_name"]) for c in translation_requests] == [
        (str(Product.objects.get(external_id="1").pk), "description")
    ] * 2
    assert {c["source_text"] for c in translation_requests} == {"<p>New words</p>"}


def test_a_tenant_with_one_locale_asks_for_nothing(shop, woo, translation_requests, acme):
    acme.enabled_locales = ["en"]
    acme.save()
    shop.add(woo_product(1))
    run_sync(woo, mode="full")
    assert translation_requests == []


def test_without_the_translations_app_the_sync_still_succeeds(shop, woo, monkeypatch, caplog):
    import products.handoff as handoff

    monkeypatch.undo()  # the real door: translations.services is absent on this branch
    shop.add(woo_product(1))
    assert run_sync(woo, mode="full").status == "succeeded"
    assert handoff.request_translation.__module__ == "products.handoff"
