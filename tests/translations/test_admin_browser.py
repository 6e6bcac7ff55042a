"""The review flow in a real headless Chromium: a publisher approves and publishes from the list,
a reviewer without the publish permission cannot."""

from __future__ import annotations

import os
import shutil

import pytest
from django.db import connections

from tests.translations.helpers import request, run
from translations.models import Translation

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM and not os.environ.get("BROXIVA_REQUIRE_BROWSER"):
    pytest.skip("Chromium is not installed (apt-get install chromium); CI requires it", allow_module_level=True)
sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = Translation.Status
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(tmp_path, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in this thread
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.set_default_timeout(20_000)
        yield page
        page.screenshot(path=str(tmp_path / "last.png"))
        browser.close()
        connections.close_all()


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_a_publisher_approves_and_publishes_from_the_list(page, live_server, acme, providers, publisher):
    good = request(acme, "Red cotton shirt", entity="p-1")
    run(good)
    draft = request(acme, "Blue jeans", entity="p-2")
    log_in(page, live_server, "paul")
    page.click("a[href='/admin/translations/translation/']")
    page.wait_for_selector("#result_list")
    page.check(f"input[name=_selected_action][value='{good.pk}']")
    page.check(f"input[name=_selected_action][value='{draft.pk}']")
    page.select_option("select[name=action]", "approve_selected")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    text = page.inner_text(".messagelist")
    assert "1 translation(s) approved." in text
    assert f"Could not approve 1: #{draft.pk} product_title p-2.title en→fr" in text
    page.check(f"input[name=_selected_action][value='{good.pk}']")
    page.select_option("select[name=action]", "publish_selected")
    page.click("button[name=index]")
    page.wait_for_selector("text=1 translation(s) published.")
    good.refresh_from_db()
    assert good.status == S.PUBLISHED and good.published_text == "«fr» Red cotton shirt"

    page.click(f"#result_list a[href$='/{good.pk}/change/']")
    assert page.inner_text("#tr-status") == "Published"
    assert page.inner_text("#tr-source") == "Red cotton shirt"
    assert page.inner_text("#tr-translation") == "«fr» Red cotton shirt"


def test_a_reviewer_approves_on_the_page_but_cannot_publish(page, live_server, acme, providers, reviewer):
    row = request(acme, "<p>Soft <b>wool</b></p>", content_type="product_description", field="description")
    run(row)
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/admin/translations/translation/{row.pk}/change/")
    assert page.inner_text("#tr-source") == "<p>Soft <b>wool</b></p>"  # shown as code, not rendered
    page.click("input[value=Approve]")
    page.wait_for_selector("text=the translation is now Vendor-approved")
    assert page.locator("input[value=Publish]").count() == 0
    page.goto(f"{live_server.url}/admin/translations/translation/")
    assert page.locator("select[name=action] option[value=publish_selected]").count() == 0
    # Forging the publish POST from the page (with its CSRF token) is refused by the server.
    status = page.evaluate(
        """async (url) => {
            const token = document.querySelector('input[name=csrfmiddlewaretoken]').value;
            const r = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token}, credentials: 'same-origin'});
            return r.status;
        }""",
        f"{live_server.url}/admin/translations/translation/{row.pk}/do/publish/",
    )
    assert status == 403
    row.refresh_from_db()
    assert row.status == S.VENDOR_APPROVED
