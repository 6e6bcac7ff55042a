"""Formatting masked, restored and verified; HTML sanitised with nh3 to the source's own tags."""

from __future__ import annotations

import json

import pytest

from tests.translations.helpers import request, run
from tests.translations.llm_server import translated
from translations import formatting, services
from translations.errors import NeedsReview
from translations.models import Translation

S = Translation.Status

SOURCE = (
    "<p>Our <b>{name}</b> shirt: see [the guide](https://shop.test/guide) and **care** tips, "
    "%(count)s left, {{ price }} only, `SKU-1`, %s</p>"
)


def test_it_masks_every_kind_of_formatting_and_restores_it():
    masked = formatting.mask(SOURCE)
    assert "<" not in masked.text and "{" not in masked.text and "%" not in masked.text and "](" not in masked.text
    assert masked.pieces == [
        "<p>",
        "<b>",
        "{name}",
        "</b>",
        "[",
        "](https://shop.test/guide)",
        "**",
        "**",
        "%(count)s",
        "{{ price }}",
        "`SKU-1`",
        "%s",
        "</p>",
    ]
    assert formatting.restore(masked, masked.text).text == SOURCE


def test_it_leaves_plain_text_alone():
    text = "5 * 3 = 15 for snake_case names, 100% cotton & more"
    assert formatting.mask(text).pieces == []
    assert formatting.sanitize(text, text) == (text, [])


def test_it_masks_our_own_bracket_characters_in_shop_text():
    masked = formatting.mask("a ⟦1⟧ b")
    assert formatting.restore(masked, masked.text).text == "a ⟦1⟧ b"


def test_it_flags_tokens_missing_repeated_or_invented():
    masked = formatting.mask("<b>Bold</b> {name}")
    assert formatting.restore(masked, "⟦1⟧Gras⟦2⟧").flags == ["formatting missing from the translation: {name}"]
    assert formatting.restore(masked, "⟦1⟧Gras⟦2⟧ ⟦3⟧ ⟦3⟧").flags == ["formatting repeated in the translation: {name}"]
    assert "unknown formatting marker" in formatting.restore(masked, "⟦1⟧Gras⟦2⟧ ⟦3⟧ ⟦9⟧").flags[0]


def test_it_compares_tag_nesting_with_a_parser():
    assert formatting.compare("<p><b>a</b> <i>b</i></p>", "<p><i>b</i> <b>a</b></p>") == []  # order may change
    assert formatting.compare("<p><b>a</b></p>", "<p></p><b>a</b>") == ["HTML tag nesting differs from the source"]
    assert formatting.compare("<p><b>a</b></p>", "<p>a</p>") == ["HTML tags missing: <b>"]
    assert formatting.compare("<p>a</p>", "<p><i>a</i></p>") == ["HTML tags added: <i>"]
    assert formatting.compare("Hi {name}", "Salut {nom}") == [
        "placeholders missing: {name}",
        "placeholders added: {nom}",
    ]


def test_it_sanitises_to_the_sources_tags_and_attributes():
    source = '<p>See <a href="/x" title="t">here</a></p>'
    out, flags = formatting.sanitize(
        source,
        '<p>Voir <a href="/x" title="t" onclick="steal()">ici</a><script>alert(1)</script><img src=x onerror=y></p>',
    )
    assert out == '<p>Voir <a href="/x" title="t">ici</a></p>'
    assert flags == [
        "HTML the source does not have was removed: <img>, <script>",
        "HTML attributes the source does not have were removed: onclick",
    ]


pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_it_round_trips_formatting_through_the_model(acme, providers):
    row = request(acme, SOURCE, content_type="product_description", field="description")
    run(row)
    segment = json.loads(providers.calls("/v1/messages")[0].body["messages"][-1]["content"])["segments"][0]
    assert "<" not in segment and "{" not in segment  # the model never sees the markup
    assert row.translated_text == f"«fr» {SOURCE}" and row.quality_flags == [] and not row.needs_review


@pytestmark_db
def test_a_tag_dropped_by_the_model_is_flagged_and_not_publishable(acme, providers, publisher):
    providers.script("anthropic", translated("anthropic", lambda out: [out[0].replace("⟦2⟧", "")]))
    row = request(acme, "<p>Soft <b>cotton</b> shirt</p>", content_type="product_description", field="description")
    run(row)
    assert row.status == S.AUTO_TRANSLATED and row.needs_review and row.format_mismatch
    assert "formatting missing from the translation: <b>" in row.quality_flags
    assert (
        "HTML tags missing: <b>" in row.quality_flags or "HTML tag nesting differs from the source" in row.quality_flags
    )
    with pytest.raises(NeedsReview, match="formatting"):
        services.approve(row.pk, user=publisher)
    Translation.objects.filter(pk=row.pk).update(status=S.VENDOR_APPROVED)  # even if it got there somehow
    with pytest.raises(NeedsReview):
        services.publish(row.pk, user=publisher)
    Translation.objects.filter(pk=row.pk).update(status=S.AUTO_TRANSLATED)
    fixed = services.edit(row.pk, user=publisher, text="<p>Chemise en <b>coton</b> doux</p>")
    assert not fixed.needs_review and not fixed.format_mismatch
    services.approve(row.pk, user=publisher)
    assert services.publish(row.pk, user=publisher).status == S.PUBLISHED


@pytestmark_db
def test_a_tag_added_by_the_model_is_flagged(acme, providers):
    providers.script("anthropic", translated("anthropic", lambda out: [f"<p>{out[0]}</p>"]))
    row = request(acme, "Soft <b>cotton</b> shirt for the summer")
    run(row)
    assert row.needs_review and row.format_mismatch
    assert row.quality_flags == ["HTML the source does not have was removed: <p>"]
    assert "<p>" not in row.translated_text


@pytestmark_db
def test_a_script_in_the_answer_is_removed(acme, providers):
    providers.script(
        "anthropic",
        translated("anthropic", lambda out: [out[0] + '<script>fetch("//evil")</script><b onclick="x()">!</b>']),
    )
    row = request(acme, "Soft <b>cotton</b> shirt for the summer")
    run(row)
    assert "<script" not in row.translated_text and "onclick" not in row.translated_text
    assert "evil" not in row.translated_text
    assert row.needs_review and any("<script>" in f for f in row.quality_flags)


@pytestmark_db
def test_an_edit_is_sanitised_too(acme, providers, publisher):
    row = request(acme, "Soft <b>cotton</b> shirt for the summer")
    run(row)
    edited = services.edit(row.pk, user=publisher, text="Chemise en <b onmouseover=x()>coton</b><script>1</script>")
    assert edited.translated_text == "Chemise en <b>coton</b>" and edited.needs_review


def test_a_script_in_the_source_is_not_allowed_back_either():
    source = '<p onclick="a()">Hi<script>x()</script></p>'
    out, flags = formatting.sanitize(source, '<p onclick="a()">Salut<script>x()</script></p>')
    assert out == "<p>Salut</p>" and flags
