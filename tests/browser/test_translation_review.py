"""The review flow in headless Chromium: a flagged machine translation found from the admin index,
corrected, approved and published; bulk approve/publish from the list; a reviewer without the
publish permission cannot publish."""

from __future__ import annotations

import pytest

from tests.translations.helpers import request, run
from translations.models import Translation
from translations.providers.pseudo import FLAG as PSEUDO_FLAG

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = Translation.Status
LIST = "/admin/translations/translation/"


def test_a_publisher_corrects_a_flagged_translation_approves_and_publishes_it_by_keyboard(
    flow, page, acme, no_keys, publisher
):
    flagged = request(acme, "Red cotton shirt", entity="p-1")
    run(flagged)  # no provider key: the pseudo-locale provider, whose output is flagged for review
    assert flagged.status == S.AUTO_TRANSLATED and flagged.needs_review and PSEUDO_FLAG in flagged.quality_flags
    request(acme, "Blue jeans", entity="p-2")  # a draft, no flag: the filter leaves it out

    flow.log_in("paul")
    flow.click(f"#content-main th a[href='{LIST}']")
    flow.step("translations")
    flow.click("#changelist-filter a:has-text('pseudo-locale (no provider)')")
    flow.step("filtered on the pseudo-locale flag")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "Red cotton shirt" in rows.first.inner_text()
    assert "Blue jeans" not in page.inner_text("#result_list")
    flow.click(f"#result_list th a[href*='/{flagged.pk}/change/']")
    assert flow.reached("the flagged translation") <= 3

    # Source and translation side by side: in one region, on one line, source first.
    source, translation = page.locator("#tr-source"), page.locator("#tr-translation")
    assert source.is_visible() and translation.is_visible()
    assert page.locator(".tr-side").filter(has=source).filter(has=translation).count() == 1
    left, right = source.bounding_box(), translation.bounding_box()
    assert left["x"] + left["width"] <= right["x"] and abs(left["y"] - right["y"]) < left["height"]
    assert source.inner_text() == "Red cotton shirt"
    assert translation.inner_text() == flagged.translated_text and translation.inner_text().startswith("[")
    assert PSEUDO_FLAG in page.inner_text("#tr-flags") and page.is_visible("#tr-needs-review")
    assert page.locator("input[value=Publish]").count() == 0  # not approved yet

    page.get_by_label("Edit the translation").fill("Chemise en coton rouge")
    flow.press("input[value='Save edit']", "Enter")
    page.wait_for_selector("text=edit: the translation is now Auto-translated")
    flow.step("corrected")
    assert page.inner_text("#tr-translation") == "Chemise en coton rouge"
    assert page.locator("#tr-flags").count() == 0 and page.locator("#tr-needs-review").count() == 0

    flow.press("input[value=Approve]", "Enter")
    page.wait_for_selector("text=approve: the translation is now Vendor-approved")
    flow.step("approved")
    flow.press("input[value=Publish]", " ")  # Space works as well as Enter on a real button
    page.wait_for_selector("text=publish: the translation is now Published")
    flow.step("published")
    assert page.inner_text("#tr-status") == "Published"
    assert page.inner_text("#tr-published") == "Chemise en coton rouge"

    flagged.refresh_from_db()
    assert flagged.status == S.PUBLISHED and flagged.published_text == "Chemise en coton rouge"
    assert flagged.published_by == publisher and flagged.provider == "manual" and not flagged.needs_review
    assert [e.action for e in flagged.events.order_by("id")][-3:] == ["edit", "approve", "publish"]


def test_a_publisher_approves_and_publishes_from_the_list(flow, page, acme, providers, publisher):
    good = request(acme, "Red cotton shirt", entity="p-1")
    run(good)
    draft = request(acme, "Blue jeans", entity="p-2")
    flow.log_in("paul")
    flow.click(f"#content-main th a[href='{LIST}']")
    page.wait_for_selector("#result_list")
    page.check(f"input[name=_selected_action][value='{good.pk}']")
    page.check(f"input[name=_selected_action][value='{draft.pk}']")
    page.select_option("select[name=action]", "approve_selected")
    flow.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    flow.step("approved from the list")
    text = page.inner_text(".messagelist")
    assert "1 translation(s) approved." in text
    assert f"Could not approve 1: #{draft.pk} product_title p-2.title en→fr" in text
    page.check(f"input[name=_selected_action][value='{good.pk}']")
    page.select_option("select[name=action]", "publish_selected")
    flow.click("button[name=index]")
    page.wait_for_selector("text=1 translation(s) published.")
    flow.step("published from the list")
    good.refresh_from_db()
    assert good.status == S.PUBLISHED and good.published_text == "«fr» Red cotton shirt"

    flow.click(f"#result_list th a[href*='/{good.pk}/change/']")
    flow.step("the published translation")
    assert page.inner_text("#tr-status") == "Published"
    assert page.inner_text("#tr-source") == "Red cotton shirt"
    assert page.inner_text("#tr-translation") == "«fr» Red cotton shirt"


def test_a_reviewer_approves_on_the_page_but_cannot_publish(flow, page, acme, providers, reviewer):
    row = request(acme, "<p>Soft <b>wool</b></p>", content_type="product_description", field="description")
    run(row)
    flow.log_in("rita")
    flow.goto(f"{LIST}{row.pk}/change/")
    assert page.inner_text("#tr-source") == "<p>Soft <b>wool</b></p>"  # shown as code, not rendered
    flow.press("input[value=Approve]", "Enter")
    page.wait_for_selector("text=the translation is now Vendor-approved")
    flow.step("approved, no publish button")
    assert page.locator("input[value=Publish]").count() == 0
    flow.goto(LIST)
    assert page.locator("select[name=action] option[value=publish_selected]").count() == 0
    # Forging the publish POST from the page (with its CSRF token) is refused by the server.
    status = page.evaluate(
        """async (url) => {
            const token = document.querySelector('input[name=csrfmiddlewaretoken]').value;
            const r = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token}, credentials: 'same-origin'});
            return r.status;
        }""",
        f"{flow.base_url}{LIST}{row.pk}/do/publish/",
    )
    assert status == 403
    row.refresh_from_db()
    assert row.status == S.VENDOR_APPROVED
