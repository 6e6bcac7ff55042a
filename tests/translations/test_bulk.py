"""request_translations: request_translation's rules row by row, in a constant number of queries."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from broxiva.models import OutboxJob
from broxiva.queues import get_queue
from translations import services
from translations.jobs import translate_job
from translations.models import Translation, TranslationEvent
from translations.services import bulk

S = Translation.Status
pytestmark = pytest.mark.django_db


def ask(
    tenant, entities=("p-1", "p-2"), fields=("title", "description"), targets=("fr", "de"), text="{entity} {field}"
):
    return [
        services.TranslationRequest(
            tenant_id=tenant.pk,
            content_type=f"product_{field}" if field in ("title", "description") else "page_body",
            entity_id=entity,
            field_name=field,
            source_locale="en",
            target_locale=target,
            source_text=text.format(entity=entity, field=field),
        )
        for entity in entities
        for field in fields
        for target in targets
    ]


def run_outbox_jobs() -> None:
    """Run every translation job still in the outbox, here, as a worker would (then drop it)."""
    for job in OutboxJob.objects.filter(queue="translation").order_by("pk"):
        translate_job(**job.kwargs)
        job.delete()


def test_it_creates_drafts_and_one_job_per_entity_and_locale_after_the_commit(
    acme, no_keys, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            summary = services.request_translations(ask(acme))
            assert get_queue("translation").count == 0  # nothing pushed before the commit
            assert OutboxJob.objects.filter(queue="translation").count() == 4

    assert (summary.created, summary.changed, summary.unchanged) == (8, 0, 0)
    rows = list(Translation.objects.all())
    assert len(rows) == 8 and all(r.status == S.DRAFT and r.source_locale == "en" for r in rows)
    assert [r.pk for r in summary.translations] == [
        Translation.objects.get(entity_id=r.entity_id, field_name=r.field_name, target_locale=r.target_locale).pk
        for r in ask(acme)
    ]
    queue = get_queue("translation")
    assert queue.count == 4 and sorted(summary.job_ids) == sorted(queue.job_ids)
    for row in rows:  # every row names a pushed job that translates its entity and locale
        job = queue.fetch_job(row.job_id)
        assert job.kwargs["job_id"] == row.job_id
        assert (job.kwargs["content"]["entity_id"], job.kwargs["target_locale"]) == (row.entity_id, row.target_locale)
    assert TranslationEvent.objects.filter(action="requested", to_status=S.DRAFT).count() == 8
    assert OutboxJob.objects.count() == 0


def test_no_job_is_pushed_when_the_transaction_rolls_back(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            services.request_translations(ask(acme))
            raise RuntimeError("the page failed")
    assert not Translation.objects.exists() and not OutboxJob.objects.exists()
    assert get_queue("translation").count == 0


def test_the_jobs_translate_every_row(acme, no_keys):
    services.request_translations(ask(acme))
    run_outbox_jobs()
    assert set(Translation.objects.values_list("status", flat=True)) == {S.AUTO_TRANSLATED}


def test_an_entity_with_more_drafts_than_a_job_takes_gets_several_jobs(acme, no_keys):
    fields = [f"block_{i}" for i in range(bulk.GROUP_LIMIT + 10)]
    services.request_translations(ask(acme, entities=("page-1",), fields=fields, targets=("fr",)))
    assert OutboxJob.objects.filter(queue="translation").count() == 2
    run_outbox_jobs()
    assert Translation.objects.filter(status=S.AUTO_TRANSLATED).count() == bulk.GROUP_LIMIT + 10


def test_an_unchanged_source_is_a_no_op(acme, no_keys, django_capture_on_commit_callbacks):
    services.request_translations(ask(acme))
    run_outbox_jobs()
    before = {r.pk: (r.status, r.job_id, r.updated_at) for r in Translation.objects.all()}
    events = TranslationEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        summary = services.request_translations(ask(acme))

    assert (summary.created, summary.changed, summary.unchanged, summary.job_ids) == (0, 0, 8, [])
    assert callbacks == [] and not OutboxJob.objects.exists()
    assert {r.pk: (r.status, r.job_id, r.updated_at) for r in Translation.objects.all()} == before
    assert TranslationEvent.objects.count() == events


def test_a_changed_source_starts_a_new_draft_and_keeps_the_published_text(acme, no_keys, publisher):
    services.request_translations(ask(acme))
    run_outbox_jobs()
    title_fr = Translation.objects.get(entity_id="p-1", field_name="title", target_locale="fr")
    services.publish(services.approve(title_fr.pk, user=publisher).pk, user=publisher)
    title_fr.refresh_from_db()
    shown = title_fr.published_text
    assert title_fr.status == S.PUBLISHED and shown

    changed = ask(acme, entities=("p-1",), fields=("title",), targets=("fr",), text="A new title")
    summary = services.request_translations([*changed, *ask(acme)[2:]])  # and the rest unchanged

    assert (summary.created, summary.changed, summary.unchanged) == (0, 1, 6)
    title_fr.refresh_from_db()
    assert title_fr.status == S.DRAFT and title_fr.source_text == "A new title" and title_fr.translated_text == ""
    assert title_fr.published_text == shown and title_fr.job_id == summary.job_ids[0]
    assert title_fr.events.filter(action="source_changed", from_status=S.PUBLISHED, to_status=S.DRAFT).exists()
    (job,) = OutboxJob.objects.filter(queue="translation")
    assert job.kwargs["translation_id"] == title_fr.pk and job.kwargs["content"]["source_text"] == "A new title"
    assert Translation.objects.exclude(pk=title_fr.pk).filter(status=S.DRAFT).count() == 0
    run_outbox_jobs()
    title_fr.refresh_from_db()
    assert title_fr.status == S.AUTO_TRANSLATED and title_fr.published_text == shown


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"target_locale": "french"}, "request 5: 'french' is not a BCP 47 locale tag"),
        ({"content_type": "poem"}, "request 5: content_type 'poem' is not one of"),
        ({"source_text": "  "}, "request 5: source_text must be a non-empty string"),
        ({"tenant_id": "acme"}, "request 5: tenant_id 'acme' is not a tenant's id"),
        ({"colour": "red"}, "request 5: unknown field(s) 'colour'"),
        ({"tenant_id": 999999}, "tenant(s) 999999 do not exist"),
    ],
)
def test_one_invalid_item_refuses_the_call_and_stores_nothing(acme, change, problem):
    services.request_translations(ask(acme, entities=("p-1",)))  # already stored: left alone
    before = list(Translation.objects.order_by("pk").values_list("pk", "source_text", "status", "job_id"))
    outbox = OutboxJob.objects.count()
    items = [vars(r) | {"source_text": f"changed {i}"} for i, r in enumerate(ask(acme))]  # dicts are accepted
    items[5] = items[5] | change

    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        services.request_translations(items)

    assert list(Translation.objects.order_by("pk").values_list("pk", "source_text", "status", "job_id")) == before
    assert OutboxJob.objects.count() == outbox


def test_an_empty_call_does_nothing(acme, django_assert_num_queries):
    with django_assert_num_queries(0):
        summary = services.request_translations([])
    assert summary.translations == [] and summary.job_ids == []


def _queries(tenant, count: int, text: str) -> int:
    entities = [f"set{count}-{i}" for i in range(count)]  # the 5 and the 200 are distinct rows
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        summary = services.request_translations(
            ask(tenant, entities=entities, fields=("title",), targets=("fr",), text=text)
        )
    assert summary.drafted == count
    return len(queries)


def test_the_query_count_does_not_grow_with_the_requests(acme):
    created = {n: _queries(acme, n, "{entity} {field}") for n in (5, 200)}
    assert created[5] == created[200]
    # Changed sources (an UPDATE of the existing rows): again the same for 5 and 200.
    changed = {n: _queries(acme, n, "new {entity} {field}") for n in (5, 200)}
    assert changed[5] == changed[200]


def test_a_row_inserted_meanwhile_by_another_request_is_treated_as_stored(acme, monkeypatch):
    # The race: our SELECT saw no row, another transaction then committed one for the same key.
    # The INSERT skips it (ON CONFLICT DO NOTHING) and the re-read treats it like a stored row.
    services.request_translations(ask(acme, entities=("p-1",), fields=("title",), targets=("fr",)))
    real = bulk._select
    calls = []

    def first_sees_nothing(keys):
        calls.append(1)
        return {} if len(calls) == 1 else real(keys)

    monkeypatch.setattr(bulk, "_select", first_sees_nothing)
    same = services.request_translations(ask(acme, entities=("p-1",), fields=("title",), targets=("fr",)))
    assert (same.created, same.changed, same.unchanged, same.job_ids) == (0, 0, 1, [])

    calls.clear()
    newer = services.request_translations(
        ask(acme, entities=("p-1",), fields=("title",), targets=("fr",), text="Newer")
    )
    assert (newer.created, newer.changed, newer.unchanged) == (0, 1, 0)
    row = Translation.objects.get()
    assert row.source_text == "Newer" and row.status == S.DRAFT and row.job_id == newer.job_ids[0]
