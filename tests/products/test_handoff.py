"""The hand-off to translations end to end: a real sync from the local WooCommerce shop writes
real Translation rows (no monkeypatching), one set-based call per page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from broxiva.models import OutboxJob
from products.models import Category, Product, SourceConnection
from products.services import start_sync
from tests.products.conftest import run_sync
from tests.products.woo_server import woo_product
from tests.workers import running_worker, wait_for, worker_env
from translations.models import Translation, TranslationEvent

S = Translation.Status


def later() -> dt.datetime:
    """A source change made after the sync that ran before it (seconds: WooCommerce's precision)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)


def keyed() -> dict[tuple[str, str, str], Translation]:
    """Every translation row by (external id, field, target locale)."""
    external = {str(p.pk): p.external_id for p in Product.objects.all()}
    return {(external[t.entity_id], t.field_name, t.target_locale): t for t in Translation.objects.all()}


@pytest.mark.django_db
def test_a_full_sync_drafts_title_and_description_in_each_other_locale(shop, woo, acme):
    shop.add(*(woo_product(i, description=f"<p>About {i}</p>") for i in range(1, 4)))  # two pages of 2

    run = run_sync(woo, mode="full")

    assert run.status == "succeeded" and run.created == 3
    rows = keyed()
    assert set(rows) == {
        (str(i), field, locale) for i in range(1, 4) for field in ("title", "description") for locale in ("fr", "de")
    }
    title_fr = rows[("1", "title", "fr")]
    assert title_fr.tenant_id == acme.pk and title_fr.content_type == "product_title"
    assert title_fr.entity_id == str(Product.objects.get(external_id="1").pk)
    assert (title_fr.source_locale, title_fr.source_text, title_fr.status) == ("en", "Product 1", S.DRAFT)
    assert rows[("2", "description", "de")].source_text == "<p>About 2</p>"
    assert all(row.status == S.DRAFT and row.job_id for row in rows.values())
    # One job per (product, target locale): the job translates the product's title and
    # description together; every row names the job that will translate it.
    jobs = list(OutboxJob.objects.filter(queue="translation"))
    assert len(jobs) == 3 * 2
    leaders = {job.kwargs["translation_id"] for job in jobs}
    by_job = {job.job_id: job for job in jobs}
    for row in rows.values():
        job = by_job[row.job_id]
        assert job.kwargs["content"]["entity_id"] == row.entity_id and job.kwargs["target_locale"] == row.target_locale
    assert len(leaders) == 6
    assert TranslationEvent.objects.filter(action="requested").count() == 12


@pytest.mark.django_db
def test_a_changed_title_drafts_only_that_title_again_and_keeps_what_was_published(shop, woo):
    shop.add(woo_product(1, description="<p>One</p>"), woo_product(2, description="<p>Two</p>"))
    run_sync(woo, mode="full")
    # The translations of product 1's title were published; everything else machine-translated.
    Translation.objects.update(status=S.AUTO_TRANSLATED, translated_text="t")
    published = Translation.objects.filter(field_name="title", entity_id=str(Product.objects.get(external_id="1").pk))
    published.update(status=S.PUBLISHED, published_text="«published» Product 1", published_at=timezone.now())
    before = {key: (row.status, row.source_text, row.job_id, row.updated_at) for key, row in keyed().items()}
    jobs_before = set(OutboxJob.objects.filter(queue="translation").values_list("job_id", flat=True))

    soon = later()
    shop.add(woo_product(1, name="Product One", description="<p>One</p>", modified=soon))
    shop.add(woo_product(2, description="<p>Two</p>", price="1.00", modified=soon))  # no text change
    run = run_sync(woo, mode="delta")

    assert run.updated == 2
    after = keyed()
    redrafted = {
        key for key, row in after.items() if (row.status, row.source_text, row.job_id, row.updated_at) != before[key]
    }
    assert redrafted == {("1", "title", "fr"), ("1", "title", "de")}
    for locale in ("fr", "de"):
        row = after[("1", "title", locale)]
        assert row.status == S.DRAFT and row.source_text == "Product One" and row.translated_text == ""
        assert row.published_text == "«published» Product 1"  # the storefront keeps showing it
        assert row.events.filter(action="source_changed", from_status=S.PUBLISHED, to_status=S.DRAFT).exists()
    new_jobs = OutboxJob.objects.filter(queue="translation").exclude(job_id__in=jobs_before)
    assert sorted(job.kwargs["target_locale"] for job in new_jobs) == ["de", "fr"]
    assert {job.kwargs["content"]["source_text"] for job in new_jobs} == {"Product One"}


@pytest.mark.django_db
def test_the_hand_off_adds_no_queries_per_product(shop, woo, settings):
    def queries_for(count: int) -> int:
        Translation.objects.all().delete()
        Product.objects.all().delete()
        Category.objects.all().delete()
        SourceConnection.objects.filter(pk=woo.pk).update(sync_cursor=None)
        shop.products.clear()
        shop.add(*(woo_product(i, description=f"<p>About {i}</p>") for i in range(1, count + 1)))
        with CaptureQueriesContext(db) as queries:
            run = run_sync(woo, mode="full")
        assert run.created == count
        assert Translation.objects.count() == count * 2 * 2  # title and description × fr, de
        return len(queries)

    settings.PRODUCT_SYNC_PAGE_SIZE = 100
    assert queries_for(5) == queries_for(100)


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_syncs_then_translates_with_the_pseudo_locale_provider(shop, woo):
    shop.add(*(woo_product(i, description=f"<p>About <b>{i}</b></p>") for i in range(1, 4)))
    start_sync(connection_id=woo.pk, mode="full")
    env = worker_env(
        OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8", PRODUCT_SYNC_PAGE_SIZE="2", ANTHROPIC_API_KEY="", OPENAI_API_KEY=""
    )

    def translated() -> bool:
        rows = list(Translation.objects.all())
        return len(rows) == 12 and all(row.status == S.AUTO_TRANSLATED for row in rows)

    with running_worker("product-sync", "translation", env=env):
        wait_for(translated, timeout=90, what="every translation to be AUTO_TRANSLATED")

    rows = keyed()
    title_fr = rows[("1", "title", "fr")]
    assert title_fr.provider == "pseudo" and title_fr.translated_text != "Product 1" and title_fr.needs_review
    assert "<b>" in rows[("2", "description", "de")].translated_text  # formatting kept
