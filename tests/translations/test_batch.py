"""translate_catalog through the providers' batch APIs: one submission, the periodic poll, results
matched by custom_id whatever their order, failed items retried singly."""

from __future__ import annotations

import json

import pytest

from broxiva.queues import get_queue
from tests.translations.helpers import request, run
from translations import services
from translations.models import Translation, TranslationBatch

S = Translation.Status
pytestmark = pytest.mark.django_db


def _catalogue(tenant, n: int) -> None:
    for i in range(n):
        request(tenant, f"Product number {i} in cotton", entity=f"p-{i}", target="fr")


@pytest.fixture
def small_batches(settings):
    settings.TRANSLATION_BATCH_MIN = 5
    settings.TRANSLATION_MAX_SEGMENTS_PER_CALL = 4


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_it_submits_one_batch_polls_it_and_matches_results_by_custom_id(kind, acme, providers, settings, small_batches):
    settings.TRANSLATION_PROVIDERS = [kind]
    _catalogue(acme, 3)  # rows in fr; the catalogue goes to de and es too
    providers.batch_ready = False
    result = services.translate_catalog(tenant_id=acme.pk, target_locales=["de", "es"])
    assert result["created"] == 6 and result["batch"] is not None and result["jobs"] == 0
    batch = TranslationBatch.objects.get()
    assert batch.provider == kind and batch.external_id
    submissions = [s for s in providers.seen if s.method == "POST"]
    assert [s.path for s in submissions] == (
        ["/v1/messages/batches"] if kind == "anthropic" else ["/v1/files", "/v1/batches"]
    )
    # 3 entities x (de, es): two locale pairs, so two requests of 3 segments each
    assert Translation.objects.filter(batch=batch).count() == 6 and len(batch.requests) == 2

    assert services.batch_poll() == {"checked": 1, "ended": 0, "translated": 0, "retried": 0}
    providers.batch_ready = True
    report = services.batch_poll()
    assert report["ended"] == 1 and report["translated"] == 6
    for row in Translation.objects.filter(target_locale__in=["de", "es"]):
        assert row.status == S.AUTO_TRANSLATED and row.provider == kind
        assert row.translated_text == f"«{row.target_locale}» {row.source_text}"  # its own text, despite shuffling
    assert services.batch_poll()["checked"] == 0


def test_the_server_really_shuffles_results(acme, providers, settings, small_batches):
    settings.TRANSLATION_PROVIDERS = ["anthropic"]
    _catalogue(acme, 8)
    services.translate_catalog(tenant_id=acme.pk, target_locales=["fr"])
    batch = TranslationBatch.objects.get()
    body = providers._anthropic_results(batch.external_id).decode().splitlines()
    assert [json.loads(line)["custom_id"] for line in body] == ["c2", "c1"]


def test_failed_items_are_retried_singly(acme, providers, settings, small_batches, django_capture_on_commit_callbacks):
    settings.TRANSLATION_PROVIDERS = ["anthropic"]
    _catalogue(acme, 8)
    services.translate_catalog(tenant_id=acme.pk, target_locales=["fr"])
    batch = TranslationBatch.objects.get()
    providers.batch_fail = {"c2"}
    failed_ids = [i for seg in batch.requests["c2"] for i in seg]
    get_queue("translation").empty()
    with django_capture_on_commit_callbacks(execute=True):
        report = services.batch_poll()
    assert report["retried"] == len(failed_ids) and report["translated"] == 8 - len(failed_ids)
    queue = get_queue("translation")
    assert sorted(j.kwargs["translation_id"] for j in queue.jobs) == sorted(failed_ids)
    for pk in failed_ids:
        row = Translation.objects.get(pk=pk)
        assert row.status == S.DRAFT and row.batch_id is None
        run(row)
        assert row.status == S.AUTO_TRANSLATED


def test_a_small_backlog_goes_through_ordinary_jobs(acme, providers, small_batches):
    _catalogue(acme, 2)
    result = services.translate_catalog(tenant_id=acme.pk, target_locales=["fr", "de"])
    assert result["batch"] is None and result["jobs"] == 4  # one per entity and locale
    assert TranslationBatch.objects.count() == 0


def test_a_refused_submission_releases_the_rows_to_jobs(acme, providers, settings, small_batches):
    from tests.translations.llm_server import anthropic_error

    settings.TRANSLATION_PROVIDERS = ["anthropic"]
    _catalogue(acme, 8)
    original = providers.post

    def refuse(path, body, ctype, raw):
        if path == "/v1/messages/batches":
            return anthropic_error(500, "api_error")(body)
        return original(path, body, ctype, raw)

    providers.post = refuse
    result = services.translate_catalog(tenant_id=acme.pk, target_locales=["fr"])
    assert result["batch"] is None and result["jobs"] == 8
    assert TranslationBatch.objects.get().status == TranslationBatch.Status.FAILED
    assert not Translation.objects.filter(batch__isnull=False).exists()


def test_memory_is_used_before_the_batch(acme, providers, publisher, small_batches):
    row = request(acme, "Product number 0 in cotton", entity="p-x", target="de")
    run(row)
    services.approve(row.pk, user=publisher)
    _catalogue(acme, 2)
    result = services.translate_catalog(tenant_id=acme.pk, target_locales=["de"])
    assert result["reused"] == 1


def test_it_refuses_bad_input(acme, providers):
    with pytest.raises(ValueError):
        services.translate_catalog(tenant_id=acme.pk, target_locales=["not a locale"])
    with pytest.raises(ValueError):
        services.translate_catalog(tenant_id=acme.pk, target_locales=["fr"], content_types=["price"])


def test_the_command_translates_a_catalogue_and_polls(acme, providers, settings, small_batches):
    from io import StringIO

    from django.core.management import CommandError, call_command

    settings.TRANSLATION_PROVIDERS = ["anthropic"]
    _catalogue(acme, 6)
    out = StringIO()
    call_command("translate_catalog", "acme", "de", stdout=out)
    assert "6 row(s) created" in out.getvalue() and "batch #" in out.getvalue()
    out = StringIO()
    call_command("translate_catalog", "--poll", stdout=out)
    assert "ended 1, rows translated 6" in out.getvalue()
    with pytest.raises(CommandError, match="no tenant"):
        call_command("translate_catalog", "nobody", "de")
    with pytest.raises(CommandError, match="not a BCP 47"):
        call_command("translate_catalog", "acme", "xx-!!")
