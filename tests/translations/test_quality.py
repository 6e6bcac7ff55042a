"""Quality checks in words, and the optional LLM judge through the provider chain."""

from __future__ import annotations

import json

import pytest

from tests.translations.helpers import request, run
from tests.translations.llm_server import anthropic_error, anthropic_message
from translations.quality import check, length_bounds


@pytest.mark.parametrize(
    ("source", "result", "target", "flag"),
    [
        ("Red cotton shirt", "", "fr", "the translation is empty"),
        ("Red cotton shirt", "Red cotton shirt", "fr", "the translation is identical to the source text"),
        ("Red cotton shirt for summer days", "Rouge", "fr", "the translation is much shorter than the source"),
        ("Red shirt for summer", "Chemise " * 20, "fr", "the translation is much longer than the source"),
        ("Red cotton shirt", "Red cotton shirt in Latin", "ru", "mostly in Latin script, expected Cyrillic for ru"),
        ("Red cotton shirt", "Красная рубашка", "ja", "expected Japanese for ja"),
    ],
)
def test_it_flags_in_plain_words(source, result, target, flag, settings):
    flags = check(source=source, result=result, source_locale="en", target_locale=target)
    assert any(flag in f for f in flags), flags


@pytest.mark.parametrize(
    ("source", "result", "target"),
    [
        ("Red cotton shirt for summer", "Chemise rouge en coton pour l'été", "fr"),
        ("Red cotton shirt for summer", "夏用の赤い綿シャツ", "ja"),
        ("Red cotton shirt for summer", "Красная хлопковая рубашка на лето", "ru"),
        ("iPhone 15", "iPhone 15", "en-GB"),  # same language: identical is fine
        ("<p>Soft <b>cotton</b> shirt</p>", "<p>Chemise en <b>coton</b> doux</p>", "fr"),
    ],
)
def test_it_passes_good_translations(source, result, target):
    assert check(source=source, result=result, source_locale="en", target_locale=target) == []


def test_it_has_bounds_per_language_pair(settings):
    assert length_bounds("en", "fr") == (0.3, 3.0)
    assert length_bounds("en", "ja")[0] < 0.3
    settings.TRANSLATION_LENGTH_RATIOS = {"en:de": [0.8, 1.6]}
    assert length_bounds("en-US", "de-AT") == (0.8, 1.6)


def judge_reply(scores):
    return lambda body: (200, {}, anthropic_message(json.dumps({"scores": scores})))


@pytest.mark.django_db
def test_it_scores_with_the_judge_and_flags_low_scores(acme, providers, settings):
    settings.TRANSLATION_QUALITY_JUDGE = True
    providers.script(
        "anthropic",
        lambda body: (
            200,
            {},
            anthropic_message(json.dumps({"translations": ["Chemise rouge", "Description trop courte mais correcte"]})),
        ),
        judge_reply([91, 40]),
    )
    title = request(acme, "Red shirt", field="title")
    description = request(
        acme, "A red shirt, short description", field="description", content_type="product_description"
    )
    run(title)
    description.refresh_from_db()
    assert (title.quality_score, title.needs_review) == (91, False)
    assert description.quality_score == 40 and description.needs_review
    assert "the quality judge scored it 40/100 (below 70)" in description.quality_flags
    judge_call = providers.calls("/v1/messages")[1].body
    assert "scores" in judge_call["system"]
    assert json.loads(judge_call["messages"][-1]["content"])["translations"] == [
        "Chemise rouge",
        "Description trop courte mais correcte",
    ]


@pytest.mark.django_db
def test_a_failing_judge_flags_instead_of_failing_the_translation(acme, providers, settings):
    settings.TRANSLATION_QUALITY_JUDGE = True
    settings.TRANSLATION_PROVIDERS = ["anthropic"]
    providers.script(
        "anthropic",
        lambda body: (200, {}, anthropic_message(json.dumps({"translations": ["Chemise"]}))),
        anthropic_error(529, "overloaded_error"),
    )
    row = request(acme, "Shirt")
    run(row)
    assert row.status == "AUTO_TRANSLATED" and row.quality_score is None and row.needs_review
    assert "the quality judge could not score this translation" in row.quality_flags
