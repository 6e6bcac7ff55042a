"""Staff and operator flows in a real headless Chromium: admin login, tenants, the dashboard."""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings as django_settings
from django.db import connections

from broxiva.queues import enqueue, get_queue
from tests.jobs.sample import always_fails
from tests.workers import running_worker, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM and not os.environ.get("BROXIVA_REQUIRE_BROWSER"):
    pytest.skip("Chromium is not installed (apt-get install chromium); CI requires it", allow_module_level=True)
sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_page(tmp_path, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still
    # synchronous (the documented workaround for Playwright with Django).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(20_000)
        yield page
        page.screenshot(path=str(tmp_path / "last.png"))
        browser.close()
        # ORM calls made while Playwright's loop runs get their own connections (asgiref's Local
        # follows the loop's context); close them here or they outlive the test database.
        connections.close_all()


@pytest.fixture
def staff(django_user_model):
    # A superuser holds every permission, django_rq.admin (the dashboard's, broxiva.dashboard) included.
    return django_user_model.objects.create_superuser("ops", "ops@example.test", "correct horse battery")


def log_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


class AdminTests:
    def test_it_lets_staff_find_a_tenant(self, browser_page, live_server, staff, acme, globex):
        page = browser_page
        log_in(page, live_server)
        page.click("text=Tenants")
        page.fill("#searchbar", "glob")
        page.press("#searchbar", "Enter")
        page.wait_for_url("**/tenant/?q=glob")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1
        assert "globex" in rows.first.inner_text()
        page.goto(f"{live_server.url}/admin/broxiva/tenant/")
        assert page.locator("#result_list tbody tr").count() == 2
        page.click("#changelist-filter a:has-text('JPY')")
        page.wait_for_url("**default_currency**")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1 and "globex" in rows.first.inner_text()


class DashboardTests:
    def test_it_shows_a_failed_job_with_its_arguments_and_traceback_and_requeues_it(
        self, browser_page, live_server, staff, settings
    ):
        settings.QUEUE_OVERRIDES = {"fx-refresh": {"attempts": 1}}
        job_id = enqueue("fx-refresh", always_fails, "dashboard")
        queue = get_queue("fx-refresh")
        with running_worker("fx-refresh", burst=True, scheduler=False) as worker:
            worker.wait(timeout=60)
        assert job_id in queue.failed_job_registry.get_job_ids()

        page = browser_page
        log_in(page, live_server)
        page.click("text=Job queues (django-rq dashboard)")
        page.wait_for_selector("text=fx-refresh")
        for name in ("email", "sitemap-generation", "webhook-delivery"):
            assert name in page.content()

        queue_index = sorted(django_settings.RQ_QUEUES).index("fx-refresh")
        page.goto(f"{live_server.url}/django-rq/queues/{queue_index}/failed/")
        page.click(f"text={job_id}")
        detail = page.content()
        assert "tests.jobs.sample.always_fails" in detail
        assert "dashboard" in detail  # the job's argument
        job_url = page.url
        page.click("text=View →")  # RQ 2 keeps the traceback on the execution's result
        assert "RuntimeError: boom dashboard" in page.content()

        page.goto(job_url)
        page.click("input[value=Requeue]")
        page.wait_for_selector(f"text=successfully requeued {job_id}")
        wait_for(lambda: job_id in queue.job_ids, timeout=10, what="the job back on its queue")
        assert job_id not in queue.failed_job_registry.get_job_ids()

    def test_it_refuses_staff_who_are_not_operators(self, browser_page, live_server, django_user_model):
        django_user_model.objects.create_user("rita", "rita@example.test", "correct horse battery", is_staff=True)
        page = browser_page
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", "rita")
        page.fill("#id_password", "correct horse battery")
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")
        assert "Job queues" not in page.content()
        response = page.goto(f"{live_server.url}/django-rq/")
        assert response.status == 403
        assert "fx-refresh" not in page.content()

    def test_it_refuses_a_user_who_is_not_staff(self, browser_page, live_server, django_user_model):
        django_user_model.objects.create_user("shopper", "s@example.test", "correct horse battery")
        page = browser_page
        page.goto(f"{live_server.url}/django-rq/")
        assert "/admin/login/" in page.url
        page.fill("#id_username", "shopper")
        page.fill("#id_password", "correct horse battery")
        page.click("input[type=submit]")
        assert "/admin/login/" in page.url
        assert "fx-refresh" not in page.content()
