"""The browser tests' one fixture module: headless Chromium, the live server, and a step recorder.

``page`` is a Playwright (sync API) page in the machine's Chromium (/usr/bin/chromium), one browser
per test. Without Chromium or Playwright the tests are skipped, unless BROXIVA_REQUIRE_BROWSER=1
(CI), where they fail instead. ``flow`` records a user's way through the admin:

- ``flow.log_in(username)`` ends on the admin index and sets the click count to 0;
- ``flow.click(target)`` clicks and counts; ``flow.press(target)`` reaches the control with Tab
  (asserting it is a real ``<button>``, ``<input type=submit|button>`` or ``<a href>``) and
  activates it with Enter or Space, and counts as a click too;
- ``flow.step("what")`` saves ``NN-what.png`` under ``test-output/browser/<test name>/`` at the
  repo root (``$BROXIVA_TEST_OUTPUT/browser/<test name>/`` when that is set) and checks the page
  holds none of the strings given to ``flow.forbid``;
- ``flow.reached("what")`` takes a step and returns the clicks made since the admin index;
- every main-frame navigation's status is recorded and must be below 400 (checked at the end of
  the test), except where the test said ``flow.goto(path, expect=403)``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from django.db import connections

# Fixtures of other folders the flows use (imported here so every browser test module sees them).
from tests.domains.conftest import zone  # noqa: F401
from tests.translations.conftest import llm, no_keys, providers, publisher, reviewer  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = bool(os.environ.get("BROXIVA_REQUIRE_BROWSER"))
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# What a keyboard user can operate: the only elements the flows accept as action controls.
ACTIONABLE = """el => {
    const tag = el.tagName.toLowerCase();
    if (tag === 'button') return 'button';
    if (tag === 'input' && ['submit', 'button'].includes(el.type)) return 'input:' + el.type;
    if (tag === 'a' && el.hasAttribute('href')) return 'a[href]';
    return '';
}"""


def output_root() -> Path:
    return Path(os.environ.get("BROXIVA_TEST_OUTPUT") or ROOT / "test-output") / "browser"


def output_folder(node: pytest.Item) -> Path:
    """``<output>/browser/<test name>/``, emptied: one folder per test, so xdist processes never share one."""
    name = f"{node.cls.__name__}.{node.name}" if getattr(node, "cls", None) else node.name
    folder = output_root() / re.sub(r"[^\w.-]+", "_", name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _sync_playwright():
    if not CHROMIUM:
        message = "Chromium is not installed (apt-get install chromium)"
        if REQUIRED:
            pytest.fail(f"{message}; BROXIVA_REQUIRE_BROWSER=1 requires it")
        pytest.skip(f"{message}; CI requires it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if REQUIRED:
            pytest.fail("Playwright is not installed (requirements-dev.txt); BROXIVA_REQUIRE_BROWSER=1 requires it")
        pytest.skip("Playwright is not installed (requirements-dev.txt)")
    return sync_playwright


@pytest.fixture
def shots(request) -> Path:
    """This test's screenshot folder."""
    return output_folder(request.node)


@pytest.fixture
def page(request, monkeypatch):
    sync_playwright = _sync_playwright()  # skip or fail before anything is written
    shots = request.getfixturevalue("shots")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still
    # synchronous (the documented workaround for Playwright with Django).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            try:
                page.screenshot(path=str(shots / "last.png"), full_page=True)
            finally:
                browser.close()
                # ORM calls made while Playwright's loop runs get their own connections (asgiref's
                # Local follows the loop's context); close them here or they outlive the test database.
                connections.close_all()


@pytest.fixture
def flow(page, live_server, shots):
    recorder = Flow(page, live_server.url, shots)
    yield recorder
    recorder.assert_no_error_pages()


@pytest.fixture
def staff(django_user_model):
    # A superuser holds every permission, django_rq.admin (the dashboard's, broxiva.dashboard) included.
    return django_user_model.objects.create_superuser("ops", "ops@example.test", PASSWORD)


class Flow:
    def __init__(self, page, base_url: str, folder: Path) -> None:
        self.page, self.base_url, self.folder = page, base_url, folder
        self.clicks = 0
        self.steps: list[Path] = []
        self.navigations: list[tuple[int, str, str]] = []  # (status, method, url) of the main frame
        self.expected: set[tuple[int, str]] = set()  # (status, url) a test expects to be refused
        self.forbidden: list[str] = []
        page.on("response", self._seen)

    def _seen(self, response) -> None:
        request = response.request
        if request.is_navigation_request() and request.frame == self.page.main_frame:
            self.navigations.append((response.status, request.method, response.url))

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    # --- moving ----------------------------------------------------------------------------------

    def goto(self, path: str, *, expect: int | None = None):
        url = self.url(path)
        if expect is not None:
            self.expected.add((expect, url))
        response = self.page.goto(url)
        assert response is not None
        if expect is None:
            assert response.status < 400, f"{url} answered {response.status}"
        else:
            assert response.status == expect, f"{url} answered {response.status}, expected {expect}"
        return response

    def reload(self):
        response = self.page.reload()
        assert response is not None and response.status < 400, f"{self.page.url} answered {response.status}"
        return response

    def log_in(self, username: str, password: str = PASSWORD) -> None:
        """Log in through the admin's form; the flow starts on the admin index with no clicks counted."""
        self.goto("/admin/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        with self.page.expect_navigation():
            self.page.press("#id_password", "Enter")
        self.page.wait_for_selector("#site-name")
        assert self.page.url == self.url("/admin/"), self.page.url
        self.clicks = 0
        self.step("admin index")

    def locator(self, target):
        return self.page.locator(target) if isinstance(target, str) else target

    def click(self, target, *, navigates: bool = True) -> None:
        """Click ``target`` (a selector or a locator), counted; by default wait for the page it loads."""
        locator = self.locator(target)
        self.clicks += 1
        if navigates:
            with self.page.expect_navigation():
                locator.click()
        else:
            locator.click()

    def tab_to(self, target, *, limit: int = 400) -> int:
        """Press Tab until ``target`` has the focus; return the presses. It must be a real control."""
        locator = self.locator(target)
        kind = locator.evaluate(ACTIONABLE)
        assert kind, f"{locator} is not a <button>, <input type=submit|button> or <a href>: not keyboard-operable"
        for presses in range(1, limit + 1):
            self.page.keyboard.press("Tab")
            if locator.evaluate("el => el === document.activeElement"):
                return presses
        raise AssertionError(f"{locator} ({kind}) was not reached with {limit} presses of Tab")

    def press(self, target, key: str = "Enter", *, navigates: bool = True) -> int:
        """Reach ``target`` with Tab and activate it with ``key`` (counted as a click); return the Tabs."""
        presses = self.tab_to(target)
        self.clicks += 1
        if navigates:
            with self.page.expect_navigation():
                self.page.keyboard.press(key)
        else:
            self.page.keyboard.press(key)
        return presses

    # --- recording -------------------------------------------------------------------------------

    def forbid(self, *strings: str) -> None:
        """Strings no page of the flow may hold (secrets); checked at every step."""
        self.forbidden.extend(s for s in strings if s)

    def step(self, what: str) -> Path:
        html = self.page.content()
        # Positions only: an assertion showing the strings would print the secret in the report.
        leaked = [i for i, secret in enumerate(self.forbidden) if secret in html]
        assert not leaked, f"forbidden string(s) {leaked} on the page at step {what!r} ({self.page.url})"
        slug = re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-")
        path = self.folder / f"{len(self.steps) + 1:02d}-{slug}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.steps.append(path)
        return path

    def reached(self, what: str) -> int:
        """Record the step where the flow's action is in reach; return the clicks it took from the index."""
        self.step(what)
        return self.clicks

    def assert_no_error_pages(self) -> None:
        errors = [(status, method, url) for status, method, url in self.navigations
                  if status >= 400 and (status, url) not in self.expected]
        assert not errors, f"error pages during the flow: {errors}"
