"""The translation job in real rqworker processes: end to end, retried, deferred, failed, polled."""

from __future__ import annotations

import json

import pytest
from rq.job import Job, JobStatus

from broxiva.queues import InvalidPayload, enqueue, get_queue
from tests.translations.conftest import ANTHROPIC_KEY, OPENAI_KEY, provider_env
from tests.translations.helpers import request
from tests.translations.llm_server import anthropic_error, openai_error, translated
from tests.workers import running_worker, wait_for
from translations.jobs import batch_poll_job, translate_job
from translations.models import Translation

S = Translation.Status
pytestmark = pytest.mark.django_db(transaction=True)


def _burst(env):
    with running_worker("translation", burst=True, env=env) as worker:
        wait_for(lambda: worker.poll() is not None, timeout=60, what="the burst worker to finish")


def _job(row: Translation) -> Job:
    row.refresh_from_db()
    return Job.fetch(row.job_id, connection=get_queue("translation").connection)


def test_a_real_worker_translates_a_requested_row(acme, llm):
    row = request(acme, "<p>Red <b>cotton</b> shirt</p>", content_type="product_description", field="description")
    _burst(provider_env(llm))
    row.refresh_from_db()
    assert row.status == S.AUTO_TRANSLATED and row.translated_text == "«fr» <p>Red <b>cotton</b> shirt</p>"
    job = _job(row)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == {"status": "AUTO_TRANSLATED", "translation_id": row.pk, "reused": 0, "translated": 1}
    assert ANTHROPIC_KEY not in json.dumps(job.kwargs)


def test_a_real_worker_retries_a_malformed_answer_and_then_stores_the_good_one(acme, llm):
    llm.script("anthropic", translated("anthropic", text="Voici: chemise"), translated("anthropic", cut_off=True))
    row = request(acme)
    env = provider_env(llm, TRANSLATION_PROVIDERS="anthropic")
    queue = get_queue("translation")
    for retries_left in (1, 0):
        _burst(env)
        job = _job(row)
        assert job.get_status() == JobStatus.SCHEDULED and job.retries_left == retries_left  # a retry is due
        assert Translation.objects.get(pk=row.pk).status == S.DRAFT
        queue.scheduled_job_registry.remove(job)  # do not wait out the backoff: run the retry now
        queue.enqueue_job(job)
    _burst(env)
    assert _job(row).get_status() == JobStatus.FINISHED
    row.refresh_from_db()
    assert len(llm.calls("/v1/messages")) == 3 and row.translated_text == "«fr» Red cotton shirt"
    assert row.last_error == ""


def test_a_real_worker_defers_429_fails_401_at_once_and_retries_overload(acme, llm):
    llm.script("anthropic", anthropic_error(429, "rate_limit_error", headers={"retry-after": "120"}))
    limited = request(acme, entity="p-429")
    env = provider_env(llm, TRANSLATION_PROVIDERS="anthropic")
    _burst(env)
    job = _job(limited)
    assert job.get_status() == JobStatus.SCHEDULED and job.retries_left == 2
    assert job.meta.get("broxiva_deferrals") == 1
    get_queue("translation").scheduled_job_registry.remove(job)

    llm.script("anthropic", anthropic_error(401, "authentication_error", f"bad key {ANTHROPIC_KEY}"))
    llm.script("openai", openai_error(401, "invalid_api_key", f"bad key {OPENAI_KEY}"))
    refused = request(acme, entity="p-401")
    _burst(provider_env(llm))
    job = _job(refused)
    assert job.get_status() == JobStatus.FAILED  # permanent: failed after one attempt, not scheduled again
    assert len(llm.calls("/v1/chat/completions")) == 1
    refused.refresh_from_db()
    assert "anthropic 401" in refused.last_error and "openai 401" in refused.last_error
    assert ANTHROPIC_KEY not in refused.last_error and OPENAI_KEY not in job.latest_result().exc_string
    assert ANTHROPIC_KEY not in job.latest_result().exc_string

    llm.script("anthropic", anthropic_error(529, "overloaded_error"))
    busy = request(acme, entity="p-529")
    _burst(env)
    job = _job(busy)
    assert job.get_status() == JobStatus.SCHEDULED and job.retries_left == 1  # an attempt spent, retried later


def test_a_real_worker_fails_over_to_openai(acme, llm):
    llm.script("anthropic", anthropic_error(529, "overloaded_error"))
    row = request(acme)
    _burst(provider_env(llm))
    row.refresh_from_db()
    assert row.status == S.AUTO_TRANSLATED and row.provider == "openai"


def test_the_embedded_default_works_without_keys(acme, llm):
    row = request(acme)
    from tests.workers import worker_env

    _burst(worker_env(ANTHROPIC_API_KEY="", OPENAI_API_KEY=""))
    row.refresh_from_db()
    assert row.status == S.AUTO_TRANSLATED and row.provider == "pseudo" and row.needs_review
    assert llm.seen == []


def test_a_real_worker_runs_the_batch_poll(acme, llm, settings):
    from translations import services

    settings.TRANSLATION_BATCH_MIN = 2
    settings.TRANSLATION_PROVIDERS = ["anthropic"]
    settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL, settings.ANTHROPIC_RPM = ANTHROPIC_KEY, llm.url, 0
    for i in range(3):
        Translation.objects.create(
            tenant=acme,
            content_type="product_title",
            entity_id=f"p-{i}",
            field_name="title",
            source_locale="en",
            target_locale="fr",
            source_text=f"Shirt {i}",
            source_hash=__import__("translations.models").models.source_hash(f"Shirt {i}"),
        )
    assert services.translate_catalog(tenant_id=acme.pk, target_locales=["de"])["batch"]
    get_queue("translation").empty()
    job_id = enqueue("translation", batch_poll_job)
    _burst(provider_env(llm, TRANSLATION_PROVIDERS="anthropic"))
    job = Job.fetch(job_id, connection=get_queue("translation").connection)
    assert job.return_value()["translated"] == 3
    assert Translation.objects.filter(target_locale="de", status=S.AUTO_TRANSLATED).count() == 3


def test_it_refuses_a_bad_payload_before_enqueueing(acme):
    with pytest.raises(InvalidPayload, match="content.type"):
        enqueue(
            "translation",
            translate_job,
            job_id="x",
            tenant_id=acme.pk,
            translation_id=1,
            source_locale="en",
            target_locale="fr",
            content={"type": "price", "entity_id": "1", "field_name": "f", "source_text": "t"},
        )
    with pytest.raises(InvalidPayload, match="target_locale"):
        enqueue(
            "translation",
            translate_job,
            job_id="x",
            tenant_id=acme.pk,
            translation_id=1,
            source_locale="en",
            target_locale="nope!",
            content={"type": "product_title", "entity_id": "1", "field_name": "f", "source_text": "t"},
        )


def test_the_entity_lock_lasts_the_queues_timeout_and_a_minute(acme, providers, settings):
    # A job killed mid-run holds its entity's lock: its retry waits for the lease, so the lease
    # follows the queue's timeout (here overridden) instead of a fixed six minutes.
    from broxiva.connections import get_redis
    from broxiva.locks import lock_key
    from tests.translations.helpers import run
    from tests.translations.llm_server import translated
    from translations.services.translate import _lock_name

    settings.QUEUE_OVERRIDES = {"translation": {"timeout": 30}}
    row = request(acme)
    leases = []

    def answer(body):
        leases.append(get_redis().pttl(lock_key(_lock_name(row))))  # while the job holds the lock
        return translated("anthropic")(body)

    providers.script("anthropic", answer)
    run(row)
    assert row.status == S.AUTO_TRANSLATED
    assert 30_000 < leases[0] <= 90_000  # 30 + 60 s, not the fixed 360 s it was
