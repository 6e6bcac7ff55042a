"""Staff pages: secrets never rendered, "sync now", search, conflicts resolved from the list."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from products.models import Product, SyncConflict, SyncRun, Variant
from tests.products.woo_server import KEY, SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = User.objects.create_superuser("staff", "staff@acme.test", "pw-not-used")
    client.force_login(user)
    return client


def test_the_connection_page_never_shows_credentials_or_the_webhook_secret(staff, woo):
    for url in (f"/admin/products/sourceconnection/{woo.pk}/change/", "/admin/products/sourceconnection/"):
        html = staff.get(url).content.decode()
        assert KEY not in html and SECRET not in html and woo.webhook_secret not in html
    assert "credentials set" in staff.get(f"/admin/products/sourceconnection/{woo.pk}/change/").content.decode().lower()


def form_data(connection, **changes):
    data = {
        "tenant": connection.tenant_id,
        "name": connection.name,
        "source": connection.source,
        "base_url": connection.base_url,
        "currency": connection.currency,
        "conflict_resolution": connection.conflict_resolution,
        "is_active": "on",
        "new_credentials": "",
        "new_webhook_secret": "",
        "runs-TOTAL_FORMS": "0",
        "runs-INITIAL_FORMS": "0",
        "runs-MIN_NUM_FORMS": "0",
        "runs-MAX_NUM_FORMS": "0",
    }
    data.update(changes)
    return data


def test_saving_without_new_secrets_keeps_the_stored_ones_and_new_ones_replace_them(staff, woo):
    url = f"/admin/products/sourceconnection/{woo.pk}/change/"
    response = staff.post(url, form_data(woo, name="Renamed"))
    assert response.status_code == 302
    woo.refresh_from_db()
    assert woo.name == "Renamed" and woo.credentials["consumer_secret"] == SECRET
    assert woo.webhook_secret == "whsec-acme-woo-0123456789"

    staff.post(
        url,
        form_data(
            woo,
            new_credentials='{"consumer_key": "ck_new", "consumer_secret": "cs_new"}',
            new_webhook_secret="new-hook-secret",
        ),
    )
    woo.refresh_from_db()
    assert woo.credentials == {"consumer_key": "ck_new", "consumer_secret": "cs_new"}
    assert woo.webhook_secret == "new-hook-secret"


def test_bad_credentials_json_is_refused_and_loses_nothing(staff, woo):
    response = staff.post(
        f"/admin/products/sourceconnection/{woo.pk}/change/", form_data(woo, new_credentials="{not json")
    )
    assert response.status_code == 200 and "Enter a JSON object" in response.content.decode()
    woo.refresh_from_db()
    assert woo.credentials["consumer_key"] == KEY


@pytest.mark.parametrize(
    "action, mode", [("sync_full", "full"), ("sync_delta", "delta"), ("sync_inventory", "inventory_only")]
)
def test_sync_now_records_a_run(staff, woo, action, mode):
    response = staff.post("/admin/products/sourceconnection/", {"action": action, "_selected_action": [woo.pk]})
    assert response.status_code == 302
    run = SyncRun.objects.get()
    assert (run.connection_id, run.mode, run.status, run.trigger) == (woo.pk, mode, "pending", "manual")


def test_products_are_searchable_by_title_sku_and_external_id(staff, woo):
    product = Product.objects.create(tenant=woo.tenant, connection=woo, external_id="4711", title="Blue mug")
    Variant.objects.create(product=product, external_id="1", sku="MUG-BLUE-L")
    Product.objects.create(tenant=woo.tenant, connection=woo, external_id="9", title="Red plate")
    for term in ("Blue", "MUG-BLUE-L", "4711"):
        html = staff.get("/admin/products/product/", {"q": term}).content.decode()
        assert "Blue mug" in html and "Red plate" not in html, term


def test_source_fields_are_read_only(staff, woo):
    product = Product.objects.create(tenant=woo.tenant, connection=woo, external_id="4711", title="Blue mug")
    html = staff.get(f"/admin/products/product/{product.pk}/change/").content.decode()
    assert 'name="external_id"' not in html and 'name="title"' in html


def test_conflicts_are_resolved_from_the_admin(staff, woo):
    product = Product.objects.create(
        tenant=woo.tenant, connection=woo, external_id="1", title="Local", synced={"title": "Old"}
    )
    keep = SyncConflict.objects.create(product=product, field="title", local_value="Local", source_value="Source")
    staff.post("/admin/products/syncconflict/", {"action": "take_source", "_selected_action": [keep.pk]})
    product.refresh_from_db()
    keep.refresh_from_db()
    assert product.title == "Source" and keep.resolution == "take_source" and keep.status == "resolved"
