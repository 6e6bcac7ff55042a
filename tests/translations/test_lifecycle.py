"""The lifecycle state machine: request → job → approve → publish, and every refused move."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from broxiva.models import OutboxJob
from broxiva.queues import get_queue
from tests.translations.helpers import request, run
from translations import services
from translations.errors import InvalidLocale, InvalidTransition, NeedsReview
from translations.models import Translation

S = Translation.Status
pytestmark = pytest.mark.django_db


def test_it_creates_a_draft_and_enqueues_its_job_after_the_commit(acme, providers, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        row = request(acme)
    assert row.status == S.DRAFT and row.translated_text == "" and row.job_id
    job = get_queue("translation").fetch_job(row.job_id)
    assert job is not None and job.kwargs["translation_id"] == row.pk
    assert job.kwargs["content"] == {
        "type": "product_title",
        "entity_id": "p-1",
        "field_name": "title",
        "source_text": "Red cotton shirt",
    }
    assert job.kwargs["tenant_id"] == acme.pk and job.kwargs["job_id"] == row.job_id
    assert OutboxJob.objects.count() == 0  # pushed by the commit hook


def test_it_is_a_no_op_for_an_unchanged_source_text(acme, providers, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        row = request(acme)
    run(row)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = request(acme)
    assert again.pk == row.pk and again.status == S.AUTO_TRANSLATED and again.job_id == row.job_id
    assert callbacks == [] and get_queue("translation").count == 1  # only the first job


def test_it_starts_a_new_draft_for_a_changed_source_and_keeps_the_published_text(acme, providers, publisher):
    row = request(acme)
    run(row)
    services.approve(row.pk, user=publisher)
    published = services.publish(row.pk, user=publisher)
    assert published.status == S.PUBLISHED and published.published_text == "«fr» Red cotton shirt"

    changed = request(acme, "Blue cotton shirt")
    assert changed.pk == row.pk and changed.status == S.DRAFT
    assert changed.translated_text == "" and changed.published_text == "«fr» Red cotton shirt"
    run(changed)
    assert changed.status == S.AUTO_TRANSLATED and changed.translated_text == "«fr» Blue cotton shirt"
    assert changed.published_text == "«fr» Red cotton shirt"


def test_it_walks_the_whole_lifecycle_and_records_who_and_when(acme, providers, publisher):
    row = request(acme)
    assert run(row)["status"] == S.AUTO_TRANSLATED
    assert row.provider == "anthropic" and row.model == "claude-test" and row.input_tokens == 100
    approved = services.approve(row.pk, user=publisher)
    assert approved.status == S.VENDOR_APPROVED and approved.reviewed_by == publisher and approved.reviewed_at
    published = services.publish(row.pk, user=publisher)
    assert published.status == S.PUBLISHED and published.published_by == publisher and published.published_at
    events = list(published.events.values_list("action", "from_status", "to_status", "user__username"))
    assert events == [
        ("requested", "", S.DRAFT, None),
        ("translated", S.DRAFT, S.AUTO_TRANSLATED, None),
        ("approve", S.AUTO_TRANSLATED, S.VENDOR_APPROVED, "paul"),
        ("publish", S.VENDOR_APPROVED, S.PUBLISHED, "paul"),
    ]
    again = services.retranslate(row.pk, user=publisher)
    assert again.status == S.DRAFT and again.published_text == "«fr» Red cotton shirt" and again.job_id


def _row_in(state: str, acme, publisher) -> Translation:
    row = request(acme, entity=f"p-{state}")
    if state == S.DRAFT:
        return row
    run(row)
    if state == S.REJECTED:
        return services.reject(row.pk, user=publisher, reason="wrong tone")
    if state in (S.VENDOR_APPROVED, S.PUBLISHED):
        services.approve(row.pk, user=publisher)
    if state == S.PUBLISHED:
        services.publish(row.pk, user=publisher)
    row.refresh_from_db()
    return row


ACTIONS = {
    "approve": lambda pk, user: services.approve(pk, user=user),
    "publish": lambda pk, user: services.publish(pk, user=user),
    "reject": lambda pk, user: services.reject(pk, user=user, reason="no"),
    "edit": lambda pk, user: services.edit(pk, user=user, text="Chemise rouge en coton"),
    "retranslate": lambda pk, user: services.retranslate(pk, user=user),
}
TARGET = {
    "approve": S.VENDOR_APPROVED,
    "publish": S.PUBLISHED,
    "reject": S.REJECTED,
    "edit": S.AUTO_TRANSLATED,
    "retranslate": S.DRAFT,
}
ALLOWED = {
    S.DRAFT: set(),
    S.AUTO_TRANSLATED: {"approve", "reject", "edit", "retranslate"},
    S.VENDOR_APPROVED: {"publish", "reject", "edit", "retranslate"},
    S.PUBLISHED: {"edit", "retranslate"},
    S.REJECTED: {"edit", "retranslate"},
}
REFUSED = [(state, action) for state, allowed in ALLOWED.items() for action in ACTIONS if action not in allowed]
MOVES = [(state, action) for state, allowed in ALLOWED.items() for action in sorted(allowed)]


@pytest.mark.parametrize(("state", "action"), REFUSED)
def test_it_refuses_every_move_the_state_machine_does_not_allow(state, action, acme, providers, publisher):
    row = _row_in(state, acme, publisher)
    before = list(row.events.values_list("id", flat=True))
    with pytest.raises(InvalidTransition) as caught:
        ACTIONS[action](row.pk, publisher)
    assert isinstance(caught.value, ValueError)
    assert state in str(caught.value) and TARGET[action] in str(caught.value)
    row.refresh_from_db()
    assert row.status == state and list(row.events.values_list("id", flat=True)) == before


@pytest.mark.parametrize(("state", "action"), MOVES)
def test_it_makes_every_allowed_move(state, action, acme, providers, publisher):
    row = _row_in(state, acme, publisher)
    moved = ACTIONS[action](row.pk, publisher)
    assert moved.status == TARGET[action]
    assert moved.events.last().user == publisher


def test_it_needs_a_reason_to_reject(acme, providers, publisher):
    row = _row_in(S.AUTO_TRANSLATED, acme, publisher)
    with pytest.raises(ValueError, match="reason"):
        services.reject(row.pk, user=publisher, reason="  ")


def test_it_checks_permissions_itself(acme, providers, reviewer, django_user_model):
    row = _row_in(S.AUTO_TRANSLATED, acme, reviewer)
    services.approve(row.pk, user=reviewer)
    with pytest.raises(PermissionDenied, match="publish_translation"):
        services.publish(row.pk, user=reviewer)
    nobody = django_user_model.objects.create_user("nobody", is_staff=True)
    with pytest.raises(PermissionDenied):
        services.reject(row.pk, user=nobody, reason="x")
    row.refresh_from_db()
    assert row.status == S.VENDOR_APPROVED


def test_it_refuses_to_publish_a_row_that_needs_review_until_a_reviewer_clears_it(acme, providers, publisher):
    row = request(acme, "Red cotton shirt", target="ru")  # the fake answers in Latin script: flagged
    run(row)
    assert row.needs_review and any("script" in f for f in row.quality_flags)
    Translation.objects.filter(pk=row.pk).update(status=S.VENDOR_APPROVED)  # as if approved before a re-check
    with pytest.raises(NeedsReview, match="needs review"):
        services.publish(row.pk, user=publisher)
    Translation.objects.filter(pk=row.pk).update(status=S.AUTO_TRANSLATED)
    edited = services.edit(row.pk, user=publisher, text="Красная хлопковая рубашка")
    assert not edited.needs_review and edited.quality_flags == [] and edited.provider == "manual"
    services.approve(row.pk, user=publisher)
    assert services.publish(row.pk, user=publisher).published_text == "Красная хлопковая рубашка"


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("source_locale", "english", InvalidLocale),
        ("target_locale", "xx-!!", InvalidLocale),
        ("content_type", "product_price", ValueError),
        ("source_text", "   ", ValueError),
        ("entity_id", "", ValueError),
        ("provider", "gemini", ValueError),
        ("tenant_id", 999999, ValueError),
        ("tenant_id", "acme", ValueError),
    ],
)
def test_it_refuses_bad_input_and_stores_nothing(field, value, error, acme, providers):
    args = {
        "tenant_id": acme.pk,
        "content_type": "product_title",
        "entity_id": "p-1",
        "field_name": "title",
        "source_locale": "en",
        "target_locale": "fr",
        "source_text": "Red cotton shirt",
        field: value,
    }
    with pytest.raises(error):
        services.request_translation(**args)
    assert Translation.objects.count() == 0 and OutboxJob.objects.count() == 0


def test_it_keeps_bcp47_tags_in_their_standard_casing(acme, providers):
    row = services.request_translation(
        tenant_id=acme.pk,
        content_type="product_description",
        entity_id="42",
        field_name="description",
        source_locale="en",
        target_locale="pt_br",
        source_text="A shirt",
    )
    assert row.target_locale == "pt-BR"


def test_the_storefront_reads_published_text_only_and_keeps_it_through_a_new_draft(
    acme, providers, publisher, django_assert_num_queries
):
    from translations.selectors import published_texts

    row = request(acme)
    run(row)
    request(acme, "Blue jeans", entity="p-2")  # a draft: never shown
    assert published_texts(tenant_id=acme.pk, target_locale="fr", entity_ids=["p-1", "p-2"]) == {}
    services.approve(row.pk, user=publisher)
    services.publish(row.pk, user=publisher)
    request(acme, "Red linen shirt")  # the source changed: a new draft
    with django_assert_num_queries(1):
        shown = published_texts(tenant_id=acme.pk, target_locale="fr", entity_ids=["p-1", "p-2"])
    assert shown == {("product_title", "p-1", "title"): "«fr» Red cotton shirt"}


def test_it_is_safe_inside_the_callers_transaction(acme, providers):
    from django.db import transaction

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        request(acme)
        assert OutboxJob.objects.count() == 1  # recorded with the row, pushed only after the commit
        raise Boom
    assert Translation.objects.count() == 0 and OutboxJob.objects.count() == 0
    assert get_queue("translation").count == 0


def test_a_reviewers_approval_clears_soft_flags_and_says_so(acme, providers, publisher):
    row = request(acme, "Red cotton shirt for summer", target="ru")  # Latin script for ru: flagged
    run(row)
    assert row.needs_review and not row.format_mismatch
    approved = services.approve(row.pk, user=publisher)
    assert not approved.needs_review and approved.quality_flags == row.quality_flags  # flags stay visible
    assert approved.events.last().note.startswith("approved, review flags cleared: the translation is mostly in Latin")
    assert services.publish(row.pk, user=publisher).status == S.PUBLISHED
