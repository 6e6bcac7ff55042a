"""A run reads a page's categories only while it has not stored them all under the same names."""

from __future__ import annotations

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext

from products.models import Category, Product
from tests.products.conftest import run_sync
from tests.products.woo_server import woo_product

pytestmark = pytest.mark.django_db


def test_later_pages_reuse_the_categories_the_run_stored_and_a_rename_is_still_written(shop, woo):
    mugs, tea = {"id": 7, "name": "Mugs", "slug": "mugs"}, {"id": 8, "name": "Tea", "slug": "tea"}
    shop.add(
        woo_product(1, categories=[mugs]), woo_product(2, categories=[mugs, tea]),  # page 1 (2 a page)
        woo_product(3, categories=[tea]), woo_product(4, categories=[mugs]),  # page 2: nothing new
        woo_product(5, categories=[{**mugs, "name": "Cups"}]), woo_product(6, categories=[tea]),  # page 3: renamed
    )

    with CaptureQueriesContext(db) as queries:
        run = run_sync(woo, mode="full")

    assert (run.status, run.created, run.pages) == ("succeeded", 6, 3)
    reads = [q["sql"] for q in queries.captured_queries
             if q["sql"].lstrip().upper().startswith("SELECT") and '"products_category"' in q["sql"].split("WHERE")[0]]
    assert len(reads) == 2, reads  # page 1 (all new) and page 3 (a rename), not page 2
    assert dict(Category.objects.filter(connection=woo).values_list("external_id", "name")) == {"7": "Cups", "8": "Tea"}
    linked = {p.external_id: sorted(c.external_id for c in p.categories.all())
              for p in Product.objects.filter(connection=woo).prefetch_related("categories")}
    assert linked == {"1": ["7"], "2": ["7", "8"], "3": ["8"], "4": ["7"], "5": ["7"], "6": ["8"]}
