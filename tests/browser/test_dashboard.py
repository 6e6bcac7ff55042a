"""Operators in the django-rq dashboard (headless Chromium): find a failed job, read it, requeue it."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from rq.job import Job, JobStatus

from broxiva.queues import enqueue, get_queue
from tests.jobs.sample import always_fails
from tests.translations.conftest import ANTHROPIC_KEY, OPENAI_KEY, provider_env
from tests.translations.helpers import request
from tests.translations.llm_server import anthropic_error, openai_error
from tests.workers import running_worker, wait_for
from translations.models import Translation

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def queue_index(name: str) -> int:
    return sorted(django_settings.RQ_QUEUES).index(name)




class DashboardTests:
    def test_it_shows_a_failed_job_with_its_arguments_and_traceback_and_requeues_it(self, flow, page, staff, settings):
        settings.QUEUE_OVERRIDES = {"fx-refresh": {"attempts": 1}}
        job_id = enqueue("fx-refresh", always_fails, "dashboard")
        queue = get_queue("fx-refresh")
        with running_worker("fx-refresh", burst=True, scheduler=False) as worker:
            worker.wait(timeout=60)
        assert job_id in queue.failed_job_registry.get_job_ids()

        flow.log_in("ops")
        flow.click("text=Job queues (django-rq dashboard)")
        page.wait_for_selector("text=fx-refresh")
        flow.step("dashboard")
        for name in ("email", "sitemap-generation", "webhook-delivery"):
            assert name in page.content()

        flow.goto(f"/django-rq/queues/{queue_index('fx-refresh')}/failed/")
        flow.click(f"text={job_id}")
        flow.step("the failed job")
        detail = page.content()
        assert "tests.jobs.sample.always_fails" in detail
        assert "dashboard" in detail  # the job's argument
        job_url = page.url
        flow.click("text=View →")  # RQ 2 keeps the traceback on the execution's result
        flow.step("its traceback")
        assert "RuntimeError: boom dashboard" in page.content()

        flow.goto(job_url)
        flow.click("input[value=Requeue]")
        page.wait_for_selector(f"text=successfully requeued {job_id}")
        flow.step("requeued")
        wait_for(lambda: job_id in queue.job_ids, timeout=10, what="the job back on its queue")
        assert job_id not in queue.failed_job_registry.get_job_ids()

    def test_an_operator_requeues_a_failed_translation_and_sees_it_finish_with_no_secret_shown(
        self, flow, page, operator, acme, providers, settings
    ):
        # Both providers refuse the keys and echo them in their error messages, as real APIs may.
        providers.script("anthropic", anthropic_error(401, "authentication_error", f"bad x-api-key {ANTHROPIC_KEY}"))
        providers.script("openai", openai_error(401, "invalid_api_key", f"Incorrect API key provided: {OPENAI_KEY}"))
        row = request(acme, "Red cotton shirt", entity="p-7")
        row.refresh_from_db()
        job_id = row.job_id
        queue = get_queue("translation")
        env = provider_env(providers)
        with running_worker("translation", burst=True, scheduler=False, env=env) as worker:
            worker.wait(timeout=60)
        assert job_id in queue.failed_job_registry.get_job_ids()  # a refused key fails at once, not retried
        secrets = [django_settings.SECRET_KEY, ANTHROPIC_KEY, OPENAI_KEY, django_settings.REDIS_PASSWORD or ""]
        assert settings.ANTHROPIC_API_KEY == ANTHROPIC_KEY and env["OPENAI_API_KEY"] == OPENAI_KEY
        flow.forbid(*secrets)

        flow.log_in("olga")
        flow.click(page.get_by_role("link", name="Job queues (django-rq dashboard)"))
        flow.step("dashboard")
        index = queue_index("translation")
        failed_link = page.locator(f"a[href='/django-rq/queues/{index}/failed/']")
        assert failed_link.inner_text().strip() == "1"
        flow.click(failed_link)
        flow.step("failed translation jobs")
        flow.click(f"a:has-text('{job_id}')")
        assert flow.reached("the failed job") <= 3

        payload = page.inner_text(".rq-grid")
        assert "translations.jobs.translate_job" in payload
        assert f"translation_id: {row.pk}" in payload and "Red cotton shirt" in payload  # the arguments, readable
        assert page.text_content(".rq-title-row .rq-pill").strip() == "failed"
        job_url = page.url
        flow.click("text=View →")  # RQ 2 keeps the traceback on the execution's result
        flow.step("its traceback")
        traceback = page.inner_text("#content")
        assert "Traceback (most recent call last)" in traceback
        assert "anthropic 401" in traceback and "openai 401" in traceback  # why, in words, without the keys
        flow.goto(job_url)

        # The providers take the keys again (the scripted refusals are spent); a worker is running.
        with running_worker("translation", scheduler=False, env=env):
            flow.press("input[value=Requeue]", "Enter")
            page.wait_for_selector(f"text=successfully requeued {job_id}")
            flow.step("requeued")
            wait_for(lambda: Job.fetch(job_id, connection=queue.connection).get_status() == JobStatus.FINISHED,
                     timeout=60, what="the requeued job to finish")
        flow.reload()
        assert page.text_content(".rq-title-row .rq-pill").strip() == "finished"
        flow.step("finished")
        row.refresh_from_db()
        assert row.status == Translation.Status.AUTO_TRANSLATED and row.translated_text == "«fr» Red cotton shirt"

    def test_it_refuses_staff_who_are_not_operators(self, flow, page, django_user_model):
        django_user_model.objects.create_user("rita", "rita@example.test", "correct horse battery", is_staff=True)
        flow.log_in("rita")
        assert "Job queues" not in page.content()
        response = flow.goto("/django-rq/", expect=403)
        assert response.status == 403
        flow.step("refused")
        assert "fx-refresh" not in page.content()

    def test_it_refuses_a_user_who_is_not_staff(self, flow, page, django_user_model):
        django_user_model.objects.create_user("shopper", "s@example.test", "correct horse battery")
        flow.goto("/django-rq/")
        assert "/admin/login/" in page.url
        page.fill("#id_username", "shopper")
        page.fill("#id_password", "correct horse battery")
        with page.expect_navigation():
            page.click("input[type=submit]")
        flow.step("login refused")
        assert "/admin/login/" in page.url
        assert "fx-refresh" not in page.content()
