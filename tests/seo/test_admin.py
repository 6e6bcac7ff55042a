"""The generations list and its "regenerate now" action; the pages admin."""

from __future__ import annotations

import pytest

from broxiva.models import OutboxJob
from broxiva.queues import get_queue
from seo.models import SitemapGeneration
from seo.services import generate_sitemaps
from tests.seo.helpers import add_products

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(admin_client):
    return admin_client


def test_the_generations_list_shows_counts_and_indexnow(staff, acme):
    add_products(acme, ["anvil"])
    generation = generate_sitemaps(tenant_id=acme.pk)
    response = staff.get("/admin/seo/sitemapgeneration/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "acme" in text and "succeeded" in text.lower()
    detail = staff.get(f"/admin/seo/sitemapgeneration/{generation.pk}/change/")
    assert detail.status_code == 200 and "products-en-1.xml.gz" in detail.content.decode()


def test_regenerate_now_queues_one_job_per_selected_tenant(staff, acme, globex):
    add_products(acme, ["anvil"])
    rows = [generate_sitemaps(tenant_id=acme.pk), generate_sitemaps(tenant_id=acme.pk),
            generate_sitemaps(tenant_id=globex.pk)]
    response = staff.post(
        "/admin/seo/sitemapgeneration/",
        {"action": "regenerate_now", "_selected_action": [r.pk for r in rows]},
        follow=True,
    )
    assert "queued for 2 tenant(s)" in response.content.decode()
    # Inside the test's transaction the jobs wait in the outbox, pushed when it commits.
    queued = OutboxJob.objects.filter(queue="sitemap-generation").order_by("kwargs__tenant_id")
    assert [job.kwargs["tenant_id"] for job in queued] == [acme.pk, globex.pk]
    assert all(job.func == "seo.jobs.generate_sitemaps_job" and job.kwargs["job_id"] == job.job_id for job in queued)
    assert get_queue("sitemap-generation").count == 0
    assert SitemapGeneration.objects.count() == 3


def test_pages_are_edited_in_the_admin(staff, acme):
    response = staff.post(
        "/admin/seo/page/add/",
        {"tenant": acme.pk, "slug": "shipping", "title": "Shipping", "locales": '["en", "fr"]', "is_published": "on"},
    )
    assert response.status_code == 302
    from seo.models import Page

    assert Page.objects.get(slug="shipping").locales == ["en", "fr"]
