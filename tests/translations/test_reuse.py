"""Translation memory (+ the 24 h ``translation:`` cache) and packing segments into calls."""

from __future__ import annotations

import json

import pytest

from broxiva import cache
from tests.translations.helpers import request, run
from translations import services
from translations.models import Translation
from translations.services import memory
from translations.services.translate import chunks

S = Translation.Status
pytestmark = pytest.mark.django_db


def _approved(acme, publisher, text="Red cotton shirt", entity="p-1"):
    row = request(acme, text, entity=entity)
    run(row)
    return services.approve(row.pk, user=publisher)


def test_it_reuses_an_identical_approved_text_without_a_call(acme, globex, providers, publisher):
    first = _approved(acme, publisher)
    calls = len(providers.seen)
    other = request(globex, "Red cotton shirt", entity="g-9")  # another shop, same text and pair
    run(other)
    assert len(providers.seen) == calls
    assert other.status == S.AUTO_TRANSLATED and other.translated_text == first.translated_text
    assert other.provider == "memory"
    assert f"#{first.pk}" in other.events.last().note


def test_it_does_not_reuse_unapproved_or_other_pairs_or_content_types(acme, providers, publisher):
    request_a = request(acme, "Red cotton shirt", entity="p-1")
    run(request_a)  # AUTO_TRANSLATED only: not reusable
    calls = len(providers.seen)
    for kwargs in (
        {"entity": "p-2"},
        {"entity": "p-3", "target": "de"},
        {"entity": "p-4", "content_type": "category_name", "field": "name"},
    ):
        run(request(acme, "Red cotton shirt", **kwargs))
    assert len(providers.seen) == calls + 3


def test_it_answers_from_the_redis_cache_in_front_of_the_table(acme, providers, publisher, django_assert_num_queries):
    first = _approved(acme, publisher)
    key = memory.key("product_title", "en", "fr", first.source_hash)
    assert cache.get_value(key) == {"id": first.pk, "text": first.translated_text}
    with django_assert_num_queries(0):
        hit = memory.lookup(
            content_type="product_title", source_locale="en", target_locale="fr", digest=first.source_hash
        )
    assert hit["text"] == first.translated_text
    services.reject(first.pk, user=publisher, reason="wrong")
    assert cache.get_value(key) is None
    assert (
        memory.lookup(content_type="product_title", source_locale="en", target_locale="fr", digest=first.source_hash)
        is None
    )


def test_it_translates_a_products_fields_together_in_one_call(acme, providers):
    title = request(acme, "Red cotton shirt", field="title")
    description = request(
        acme, "<p>Soft and <b>light</b>.</p>", field="description", content_type="product_description"
    )
    seo = request(acme, "Buy the red shirt", field="seo_title", content_type="seo_title")
    run(title)
    (call,) = providers.calls("/v1/messages")
    contract = json.loads(call.body["messages"][-1]["content"])
    assert contract["content_type"] == "mixed: product_description, product_title, seo_title"
    assert len(contract["segments"]) == 3
    for row in (description, seo):
        row.refresh_from_db()
        assert row.status == S.AUTO_TRANSLATED
    assert description.translated_text == "«fr» <p>Soft and <b>light</b>.</p>"
    assert run(description)["status"] == "skipped"  # its own job finds it done


def test_it_packs_segments_under_the_token_and_segment_budgets(settings):
    settings.TRANSLATION_MAX_SEGMENTS_PER_CALL = 100
    settings.TRANSLATION_MAX_INPUT_TOKENS = 2000
    short = ["Red cotton shirt"] * 250
    assert [len(c) for c in chunks(short)] == [100, 100, 50]
    long = ["x" * 1500] * 5  # ~500 tokens each
    packed = chunks(long)
    assert all(sum(len(long[i]) // 3 for i in c) <= 2000 for c in packed) and len(packed) >= 2
    assert [i for c in packed for i in c] == list(range(5))  # order kept
    assert chunks(["y" * 30000]) == [[0]]  # one oversize segment goes alone


def test_a_big_job_is_chunked_into_several_calls(acme, providers, settings):
    settings.TRANSLATION_MAX_SEGMENTS_PER_CALL = 4
    rows = [request(acme, f"Shirt number {i}", field=f"f{i}") for i in range(10)]
    run(rows[0])
    assert len(providers.calls("/v1/messages")) == 3
    assert Translation.objects.filter(status=S.AUTO_TRANSLATED).count() == 10
    for row in rows:
        row.refresh_from_db()
        assert row.translated_text == f"«fr» {row.source_text}"  # each row got its own segment back


def test_identical_texts_in_one_job_go_once(acme, providers):
    for field in ("a", "b", "c"):
        request(acme, "Same text", field=field)
    run(Translation.objects.first())
    contract = json.loads(providers.calls("/v1/messages")[0].body["messages"][-1]["content"])
    assert contract["segments"] == ["Same text"]
    assert Translation.objects.filter(status=S.AUTO_TRANSLATED).count() == 3
