"""The Operations page (headless Chromium): from the admin index to a failed job, by keyboard."""

from __future__ import annotations

import pytest

from broxiva.alerts import check_queues
from broxiva.queues import enqueue, get_queue
from tests.jobs.sample import always_fails
from tests.workers import running_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_operator_reads_the_queues_health_and_reaches_a_failed_job_in_three_clicks(
    flow, page, operator, settings
):
    settings.QUEUE_OVERRIDES = {"fx-refresh": {"attempts": 1}}
    settings.HEALTH_FAILED_WARNING, settings.HEALTH_FAILED_CRITICAL = 0, 5
    job_id = enqueue("fx-refresh", always_fails, "operations")
    with running_worker("fx-refresh", burst=True, scheduler=False) as worker:
        worker.wait(timeout=60)
    assert job_id in get_queue("fx-refresh").failed_job_registry.get_job_ids()
    [alert] = check_queues()  # fx-refresh went ok -> warning: one alert, listed on the page

    flow.log_in("olga")
    flow.press(page.get_by_role("link", name="Queue health and alerts"))
    flow.step("operations")
    row = page.locator("#ops-queue-fx-refresh")
    assert row.locator(".ops-status").inner_text() == "warning"
    assert "failed jobs 1 > 0 (warning)" in row.inner_text()
    assert alert.subject in page.inner_text("#ops-alerts")
    flow.press(row.locator("a.ops-failed"))
    flow.step("failed fx-refresh jobs")
    flow.press(page.locator(f"a:has-text('{job_id}')"))
    assert flow.reached("the failed job") <= 3
    assert "tests.jobs.sample.always_fails" in page.inner_text(".rq-grid")
