"""The sitemap-generation job, its payload, the daily fan-out and a real worker."""

from __future__ import annotations

import pytest
from django.core.files.storage import storages

from broxiva.queues import InvalidPayload, enqueue, get_queue
from seo.jobs import SitemapJobData, generate_sitemaps_all_job, generate_sitemaps_job, request_generation
from seo.models import SitemapGeneration
from tests.seo.helpers import add_products, read, validate_index
from tests.workers import running_worker, wait_for, worker_env


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload, problem",
    [
        ({"job_id": "j1", "tenant_id": 1, "types": ["videos"]}, "types.0"),
        ({"job_id": "j1", "tenant_id": 1, "types": []}, "at least one"),
        ({"job_id": "j1", "tenant_id": 0}, "tenant_id"),
        ({"tenant_id": 1}, "job_id"),
        ({"job_id": "j1", "tenant_id": 1, "ping": True}, "ping"),
    ],
)
def test_it_refuses_a_bad_payload_at_enqueue(payload, problem):
    with pytest.raises(InvalidPayload, match=problem):
        enqueue("sitemap-generation", generate_sitemaps_job, **payload)
    assert get_queue("sitemap-generation").count == 0


def test_the_payload_is_the_seeds_sitemap_job_data():
    data = SitemapJobData(job_id="j1", tenant_id=3)
    assert data.model_dump() == {
        "job_id": "j1", "tenant_id": 3, "types": None, "locales": None,
        "upload_to_storage": True, "ping_search_engines": False,
    }


def test_the_daily_entry_fires_at_three_utc():
    from broxiva.schedules import collect

    entry = next(e for e in collect() if e.id == "sitemaps-generate-all")
    assert (entry.cron, entry.queue) == ("0 3 * * *", "sitemap-generation")
    assert entry.func == "seo.jobs.generate_sitemaps_all_job"


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_fan_out_and_each_tenants_generation(acme, globex, tmp_path, sitemap_storage):
    from broxiva.models import Tenant

    add_products(acme, ["anvil", "rocket"])
    add_products(globex, ["robot"])
    Tenant.objects.create(slug="dormant", name="Dormant", is_active=False)
    assert generate_sitemaps_all_job() == {"queued": 2}
    bad = request_generation(tenant_id=999_999)  # a tenant that does not exist: fails at once
    queue = get_queue("sitemap-generation")
    assert queue.count == 3

    env = worker_env(BROXIVA_VAR_DIR=str(tmp_path))  # the worker's STORAGES["sitemaps"] is this test's
    with running_worker("sitemap-generation", env=env):
        done = wait_for(
            lambda: SitemapGeneration.objects.filter(status="succeeded").count() == 2
            and queue.failed_job_registry.count,
            timeout=60, what="two generations and one failed job",
        )
    assert done
    storage = storages["sitemaps"]
    for tenant in (acme, globex):
        generation = SitemapGeneration.objects.get(tenant=tenant)
        assert generation.published and generation.job_id
        index = validate_index(read(storage, generation.index_files[0]))
        assert f"https://{tenant.slug}.broxiva.com/sitemaps/{generation.pk}/" in index[0][0].text
        assert all(storage.exists(f["path"]) for f in generation.files)
    failed = queue.fetch_job(bad)
    assert failed.is_failed and "does not exist" in failed.latest_result().exc_string
    assert failed.retries_left == 0  # permanent (transient=False): its two retries were not spent
