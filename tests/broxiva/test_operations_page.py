"""The Operations page in the admin: the health report for people, with links and the last alerts."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta

import pytest

from broxiva.alerts import notify
from broxiva.models import OutboxJob
from broxiva.queues import PRIORITY_ORDER, enqueue
from broxiva.views import _age
from tests.broxiva.ops_helpers import fill_queue
from tests.broxiva.test_redis_down import PASSWORD as REDIS_PASSWORD
from tests.broxiva.test_redis_down import free_port, refused_line
from tests.jobs.sample import always_fails
from tests.workers import running_worker, wait_for

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # noqa: S105




def row(page: str, queue: str) -> str:
    match = re.search(rf'<tr id="ops-queue-{re.escape(queue)}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {queue}"
    return match.group(1)


def cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", html, re.S)]


class AccessTests:
    def test_staff_who_are_not_operators_are_refused_and_anonymous_visitors_sent_to_log_in(
        self, client, django_user_model
    ):
        assert client.get("/admin/operations/").status_code == 302
        rita = django_user_model.objects.create_user("rita", "r@broxiva.test", PASSWORD, is_staff=True)
        client.force_login(rita)

        assert client.get("/admin/operations/").status_code == 403
        assert "Queue health and alerts" not in client.get("/admin/").content.decode()

    def test_the_admin_index_links_it_for_operators(self, client, operator):
        client.force_login(operator)

        assert 'href="/admin/operations/"' in client.get("/admin/").content.decode()


class ReportTests:
    def test_it_shows_every_queue_in_priority_order_with_counts_status_and_reasons(self, client, operator, settings):
        settings.HEALTH_WAITING_WARNING, settings.HEALTH_WAITING_CRITICAL = 2, 4
        fill_queue("email", 5, enqueued_at=datetime.now(UTC) - timedelta(minutes=3, seconds=20))
        fill_queue("product-sync", 3)
        client.force_login(operator)

        response = client.get("/admin/operations/")

        page = response.content.decode()
        assert response.status_code == 200  # a page for people: 200 even when critical
        assert response["Cache-Control"].startswith("max-age=0")
        assert [m for m in re.findall(r'<tr id="ops-queue-([\w-]+)">', page)] == list(PRIORITY_ORDER)
        email = cells(row(page, "email"))
        assert email[:5] == ["email", "critical", "5", "0", "0"]
        assert email[6].startswith("3 min")  # the age grows while the test runs
        assert "waiting jobs 5 &gt; 4 (critical)" in row(page, "email")
        assert "no workers while 5 jobs wait" in row(page, "email")
        assert cells(row(page, "product-sync"))[1] == "warning"
        assert cells(row(page, "fx-refresh"))[1:3] == ["ok", "0"]
        assert 'id="ops-overall">CRITICAL<' in page

    @pytest.mark.django_db(transaction=True)  # enqueue() inside a test's transaction would wait in the outbox
    def test_a_failed_job_is_one_click_from_its_queues_failed_jobs_in_the_dashboard(self, client, operator, settings):
        settings.QUEUE_OVERRIDES = {"fx-refresh": {"attempts": 1}}
        job_id = enqueue("fx-refresh", always_fails, "ops-page")
        with running_worker("fx-refresh", burst=True, scheduler=False) as worker:
            worker.wait(timeout=60)
        client.force_login(operator)

        page = client.get("/admin/operations/").content.decode()

        link = re.search(r'<a class="ops-failed" href="([^"]+)">1 failed</a>', row(page, "fx-refresh"))
        assert link, row(page, "fx-refresh")
        failed = client.get(link.group(1))
        assert failed.status_code == 200 and job_id in failed.content.decode()

    def test_it_lists_the_last_alerts_newest_first_with_links(self, client, operator):
        for number in range(12):
            notify(f"alert number {number}", "body", source="queue-health", details={"queue": "email"})
        client.force_login(operator)

        page = client.get("/admin/operations/").content.decode()

        alerts = page[page.index('id="ops-alerts"'):]
        subjects = re.findall(r"alert number (\d+)", alerts)
        assert subjects == [str(n) for n in range(11, 1, -1)]  # the last ten, newest first
        assert "/admin/broxiva/alert/" in alerts

    def test_it_says_how_many_committed_jobs_wait_in_the_outbox(self, client, operator):
        OutboxJob.objects.create(queue="email", func="tests.jobs.sample.record", job_id="j1", args=[], kwargs={})
        client.force_login(operator)

        outbox = client.get("/admin/operations/").content.decode().split('id="ops-outbox"')[1]

        assert "1 waiting" in outbox and "/admin/broxiva/outboxjob/" in outbox

    def test_an_unreachable_redis_is_a_page_that_says_so_without_the_password(self, client, operator, settings):
        port = free_port()
        settings.REDIS_PASSWORD = REDIS_PASSWORD
        settings.REDIS_QUEUE_URL = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/15"
        client.force_login(operator)

        response = client.get("/admin/operations/")

        page = response.content.decode()
        assert response.status_code == 503
        assert "Redis is unreachable" in page and refused_line(str(port)) in page
        assert REDIS_PASSWORD not in page


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (0, "0 s"), (59.9, "59 s"), (60, "1 min"), (200, "3 min 20 s"), (3600, "1 h"),
     (3900, "1 h 5 min"), (86400, "1 d"), (90000, "1 d 1 h")],
)
def test_ages_read_like_people_write_them(seconds, text):
    assert _age(seconds) == text


@pytest.mark.django_db(transaction=True)
def test_it_lists_the_live_workers_with_their_host_queues_and_state(client, operator):
    client.force_login(operator)
    assert "No worker is registered" in client.get("/admin/operations/").content.decode()

    def workers_table() -> str:
        return client.get("/admin/operations/").content.decode().split('id="ops-workers"')[1].split("</table>")[0]

    with running_worker("email", "fx-refresh", scheduler=False) as worker:
        wait_for(lambda: "fx-refresh" in workers_table(), timeout=30, what="the worker on the page")
        workers = workers_table()

        [line] = re.findall(r"<tr title=.*?</tr>", workers, re.S)
        assert cells(line)[:5] == [socket.gethostname(), str(worker.pid), "idle", "—", "email, fx-refresh"]
