"""Field-level conflicts: a field edited here and changed at the source, under each strategy."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from products.models import Product, SyncConflict
from products.services import resolve_conflict
from products.services.engine import merge_field
from tests.products.conftest import run_sync
from tests.products.woo_server import woo_product

pytestmark = pytest.mark.django_db


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def synced(shop, woo):
    """Product 1 synced, then its title edited here (through the ORM, as the admin does)."""
    shop.add(woo_product(1, name="Source title", price="10.00", stock=5), woo_product(2))
    run_sync(woo, mode="full")
    product = Product.objects.get(connection=woo, external_id="1")
    product.title = "Local title"
    product.save()
    return Product.objects.get(pk=product.pk)


def change_at_source(shop, *, name="New source title", price="12.00", modified=None):
    shop.add(woo_product(1, name=name, price=price, stock=5, modified=modified or now() + dt.timedelta(seconds=1)))


def test_a_local_edit_is_stamped_and_kept_when_the_source_did_not_change_that_field(shop, woo, synced):
    assert "title" in synced.local_edited_at and synced.synced["title"] == "Source title"
    change_at_source(shop, name="Source title")  # only the price changes at the source

    run = run_sync(woo, conflict_resolution="source_wins")

    product = Product.objects.get(pk=synced.pk)
    assert (product.title, product.price) == ("Local title", Decimal("12.00"))
    assert run.conflicts == 0 and run.updated == 1 and not SyncConflict.objects.exists()


def test_source_wins(shop, woo, synced):
    change_at_source(shop)
    run = run_sync(woo, conflict_resolution="source_wins")

    product = Product.objects.get(pk=synced.pk)
    assert (product.title, product.price) == ("New source title", Decimal("12.00"))
    assert "title" not in product.local_edited_at and product.synced["title"] == "New source title"
    assert run.conflicts == 1
    conflict = SyncConflict.objects.get()
    assert (conflict.field, conflict.local_value, conflict.source_value, conflict.status, conflict.resolution) == (
        "title",
        "Local title",
        "New source title",
        "resolved",
        "source_wins",
    )


def test_local_wins_keeps_the_local_value_and_takes_the_untouched_fields(shop, woo, synced):
    change_at_source(shop)
    run = run_sync(woo, conflict_resolution="local_wins")

    product = Product.objects.get(pk=synced.pk)
    assert (product.title, product.price) == ("Local title", Decimal("12.00"))
    assert product.description == "<p>About product 1</p>" and product.handle == "product-1"
    assert run.conflicts == 1 and SyncConflict.objects.get().resolution == "local_wins"
    # The same source value does not raise the conflict again.
    change_at_source(shop)
    assert run_sync(woo, conflict_resolution="local_wins").conflicts == 0


def test_newest_wins_takes_the_source_when_it_changed_after_the_local_edit(shop, woo, synced):
    change_at_source(shop, modified=now() + dt.timedelta(minutes=5))
    run_sync(woo, conflict_resolution="newest_wins")
    assert Product.objects.get(pk=synced.pk).title == "New source title"


def test_newest_wins_keeps_the_local_edit_when_it_is_newer(shop, woo, synced):
    edited = dt.datetime.fromisoformat(synced.local_edited_at["title"])
    change_at_source(shop, modified=edited + dt.timedelta(seconds=1))
    Product.objects.filter(pk=synced.pk).update(
        local_edited_at={"title": (edited + dt.timedelta(minutes=10)).isoformat()}
    )

    run_sync(woo, conflict_resolution="newest_wins")

    product = Product.objects.get(pk=synced.pk)
    assert (product.title, product.price) == ("Local title", Decimal("12.00"))


def test_flag_for_review_opens_a_conflict_and_keeps_local_until_staff_take_the_source(shop, woo, synced):
    change_at_source(shop)
    run = run_sync(woo, conflict_resolution="flag_for_review")

    product = Product.objects.get(pk=synced.pk)
    assert (product.title, product.price) == ("Local title", Decimal("12.00"))
    conflict = SyncConflict.objects.get()
    assert (conflict.status, conflict.local_value, conflict.source_value, conflict.run_id) == (
        "open",
        "Local title",
        "New source title",
        run.pk,
    )
    # The source moves again before anyone decided: still one open conflict, with the newer value.
    change_at_source(shop, name="Newer source title")
    run_sync(woo, conflict_resolution="flag_for_review")
    conflict = SyncConflict.objects.get(status="open")
    assert conflict.source_value == "Newer source title"

    resolve_conflict(conflict_id=conflict.pk, resolution="take_source")

    product = Product.objects.get(pk=synced.pk)
    assert product.title == "Newer source title" and "title" not in product.local_edited_at
    assert SyncConflict.objects.get(pk=conflict.pk).resolution == "take_source"
    assert run_sync(woo, conflict_resolution="flag_for_review").conflicts == 0


def test_keep_local_closes_the_conflict_and_leaves_the_product(shop, woo, synced):
    change_at_source(shop)
    run_sync(woo, conflict_resolution="flag_for_review")
    conflict = SyncConflict.objects.get()

    resolve_conflict(conflict_id=conflict.pk, resolution="keep_local")

    assert Product.objects.get(pk=synced.pk).title == "Local title"
    conflict.refresh_from_db()
    assert conflict.status == "resolved" and conflict.resolution == "keep_local"


def test_the_connections_default_strategy_applies_without_an_override(shop, woo, synced):
    woo.conflict_resolution = "flag_for_review"
    woo.save()
    change_at_source(shop)
    run_sync(woo)
    assert SyncConflict.objects.get().status == "open"


def test_both_sides_making_the_same_change_is_no_conflict(shop, woo, synced):
    change_at_source(shop, name="Local title")
    run = run_sync(woo, conflict_resolution="flag_for_review")
    product = Product.objects.get(pk=synced.pk)
    assert run.conflicts == 0 and product.synced["title"] == "Local title" and "title" not in product.local_edited_at


@pytest.mark.parametrize(
    "local, synced_value, source, strategy, expected",
    [
        ("a", "a", "a", "source_wins", ("a", "a", "")),
        ("L", "a", "a", "source_wins", ("L", "a", "")),
        ("a", "a", "S", "local_wins", ("S", "S", "")),
        ("L", "a", "S", "source_wins", ("S", "S", "source_wins")),
        ("L", "a", "S", "local_wins", ("L", "S", "local_wins")),
        ("L", "a", "S", "flag_for_review", ("L", "S", "open")),
    ],
)
def test_merge_field(local, synced_value, source, strategy, expected):
    assert (
        merge_field(
            name="title",
            local=local,
            synced=synced_value,
            source=source,
            strategy=strategy,
            source_updated_at=None,
            local_edited_at=None,
        )
        == expected
    )
