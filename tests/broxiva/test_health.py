"""Queue health endpoints: the seed's JSON shape, the §6 thresholds, access, and their cost."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rq import Worker
from rq.registry import FailedJobRegistry
from rq.utils import utcformat

from broxiva.models import OutboxJob
from broxiva.outbox import new_job_id
from broxiva.queues import PRIORITY_ORDER, enqueue, get_queue
from tests.broxiva.ops_helpers import count_round_trips, fill_queue
from tests.jobs.sample import record
from tests.workers import ROOT, worker_env


def live_worker(*queues: str, last_heartbeat: datetime | None = None) -> Worker:
    """Register a real RQ worker on the queues (birth + heartbeat), without running it."""
    rq_queues = [get_queue(name) for name in queues]
    worker = Worker(rq_queues, connection=rq_queues[0].connection)
    worker.register_birth()
    if last_heartbeat is not None:
        worker.connection.hset(worker.key, "last_heartbeat", utcformat(last_heartbeat))
    return worker


def queues_report(client, **headers) -> tuple[int, dict]:
    response = client.get("/health/queues", headers=headers)
    return response.status_code, response.json()


class HealthShapeTests:
    def test_it_reports_the_seed_shape_with_the_extensions(self, client):
        for n in range(3):
            enqueue("fx-refresh", record, f"m{n}")
        live_worker("fx-refresh")

        status, report = queues_report(client)

        assert status == 200
        seed_keys = {"totalQueues", "healthyQueues", "totalWaiting", "totalActive", "totalFailed", "queues"}
        assert seed_keys | {"status"} <= set(report)
        assert report["status"] == "ok"
        assert report["totalQueues"] == len(PRIORITY_ORDER) == report["healthyQueues"]
        assert report["totalWaiting"] == 3 and report["totalActive"] == 0 and report["totalFailed"] == 0
        assert list(report["queues"]) == list(PRIORITY_ORDER)
        fx = report["queues"]["fx-refresh"]
        assert {k: fx[k] for k in ("waiting", "active", "failed", "healthy", "scheduled", "workers", "status")} == {
            "waiting": 3, "active": 0, "failed": 0, "healthy": True, "scheduled": 0, "workers": 1, "status": "ok",
        }
        assert 0 <= fx["oldestWaitingAgeSeconds"] < 60
        assert fx["reasons"] == []
        assert report["queues"]["email"]["oldestWaitingAgeSeconds"] is None

    @pytest.mark.django_db
    def test_an_outbox_row_the_relay_left_for_minutes_makes_the_report_warning_then_critical(self, client, settings):
        settings.HEALTH_OUTBOX_WARNING_SECONDS, settings.HEALTH_OUTBOX_CRITICAL_SECONDS = 180, 900
        row = OutboxJob.objects.create(job_id=new_job_id(), queue="email", func="tests.jobs.sample.record", args=[])
        status, report = queues_report(client)
        outbox = report["outbox"]
        assert (status, report["status"], outbox["status"], outbox["waiting"]) == (200, "ok", "ok", 1)

        OutboxJob.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=200))
        status, report = queues_report(client)
        assert (status, report["status"], report["outbox"]["status"]) == (200, "warning", "warning")
        assert report["outbox"]["reasons"][0].startswith("1 committed job(s) not yet in Redis, the oldest for 20")

        OutboxJob.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=1000))
        status, report = queues_report(client)
        assert (status, report["status"], report["outbox"]["status"]) == (503, "critical", "critical")
        assert all(q["status"] == "ok" for q in report["queues"].values()), "the queues themselves are fine"

    def test_it_answers_one_queue_by_name(self, client):
        enqueue("translation", record, "t")
        response = client.get("/health/queue/translation")
        assert response.status_code == 200
        body = response.json()
        assert body["waiting"] == 1 and body["workers"] == 0
        assert body["status"] == "warning" and body["reasons"] == ["no workers while 1 jobs wait"]

    def test_it_answers_404_with_a_json_error_for_an_unknown_queue(self, client):
        response = client.get("/health/queue/no-such-queue")
        assert response.status_code == 404
        assert response.json()["error"] == "unknown queue 'no-such-queue'"
        assert response.json()["queues"] == list(PRIORITY_ORDER)


class HealthThresholdTests:
    def test_it_warns_with_reasons_when_1001_jobs_wait_and_no_worker_listens(self, client):
        fill_queue("product-sync", 1001)

        status, report = queues_report(client)

        queue = report["queues"]["product-sync"]
        assert status == 200
        assert report["status"] == queue["status"] == "warning"
        assert queue["healthy"] is False and queue["workers"] == 0
        assert queue["reasons"] == ["waiting jobs 1001 > 1000 (warning)", "no workers while 1001 jobs wait"]
        assert report["healthyQueues"] == len(PRIORITY_ORDER) - 1

    def test_it_is_critical_and_answers_503_when_5001_jobs_wait(self, client):
        fill_queue("product-sync", 5001)
        live_worker("product-sync")

        status, report = queues_report(client)

        assert status == 503
        assert report["status"] == "critical"
        assert report["queues"]["product-sync"]["reasons"] == ["waiting jobs 5001 > 5000 (critical)"]
        assert client.get("/health/queue/product-sync").status_code == 503
        assert client.get("/health/queue/email").status_code == 200

    def test_it_warns_when_the_oldest_waiting_job_was_enqueued_two_hours_ago(self, client):
        fill_queue("email", 1, enqueued_at=datetime.now(UTC) - timedelta(hours=2))
        enqueue("email", record, "fresh")
        live_worker("email")

        status, report = queues_report(client)

        email = report["queues"]["email"]
        assert status == 200 and email["status"] == "warning"
        assert 7190 < email["oldestWaitingAgeSeconds"] < 7300
        assert email["reasons"] == [f"oldest waiting job age {email['oldestWaitingAgeSeconds']:.0f}s > 3600s (warning)"]

    def test_it_is_critical_when_the_oldest_waiting_job_is_seven_hours_old(self, client):
        fill_queue("email", 1, enqueued_at=datetime.now(UTC) - timedelta(hours=7))
        live_worker("email")
        status, report = queues_report(client)
        assert status == 503 and report["queues"]["email"]["status"] == "critical"

    def test_it_warns_then_goes_critical_on_failed_jobs(self, client):
        queue = get_queue("notification")
        registry = FailedJobRegistry(queue=queue)
        jobs = [queue.enqueue_call("tests.jobs.sample.record", args=("f",)) for _ in range(201)]
        queue.empty()
        for job in jobs[:51]:
            registry.add(job, ttl=3600, exc_string="boom")
        assert queues_report(client)[1]["queues"]["notification"]["reasons"] == ["failed jobs 51 > 50 (warning)"]
        for job in jobs[51:]:
            registry.add(job, ttl=3600, exc_string="boom")
        status, report = queues_report(client)
        assert status == 503 and report["queues"]["notification"]["reasons"] == ["failed jobs 201 > 200 (critical)"]

    def test_it_does_not_count_a_worker_that_stopped_sending_heartbeats(self, client):
        enqueue("email", record, "x")
        live_worker("email", last_heartbeat=datetime.now(UTC) - timedelta(minutes=10))
        queue = queues_report(client)[1]["queues"]["email"]
        assert queue["workers"] == 0 and queue["reasons"] == ["no workers while 1 jobs wait"]

    def test_it_reads_its_thresholds_from_settings(self, client, settings):
        settings.HEALTH_WAITING_WARNING, settings.HEALTH_WAITING_CRITICAL = 2, 4
        fill_queue("email", 3)
        live_worker("email")
        assert queues_report(client)[1]["queues"]["email"]["reasons"] == ["waiting jobs 3 > 2 (warning)"]
        fill_queue("email", 2)
        assert queues_report(client)[0] == 503


class HealthCostTests:
    def test_it_uses_the_same_redis_round_trips_with_100_and_100000_waiting_jobs(self, client):
        live_worker("translation")
        client.get("/health/queues")  # the process's queue client connects once, outside the count
        fill_queue("translation", 100)
        with count_round_trips() as small:
            assert queues_report(client)[1]["queues"]["translation"]["waiting"] == 100
        fill_queue("translation", 99_900)
        # Filling takes a while on a busy machine (parallel test processes): past the client's
        # health_check_interval, its next command would add a PING. Take that one outside the count.
        client.get("/health/queues")
        with count_round_trips() as large:
            assert queues_report(client)[1]["queues"]["translation"]["waiting"] == 100_000

        assert small.count == large.count == 2, (small.count, large.count)
        # 8 per queue (counts, worker set, head of the list), then the worker's heartbeat and the
        # sampled jobs' enqueue times: nothing grows with the jobs.
        assert small.commands == large.commands == 8 * len(PRIORITY_ORDER) + 1 + 10


class HealthAccessTests:
    @pytest.fixture(autouse=True)
    def token(self, settings):
        settings.HEALTH_TOKEN = "s3cret-health"

    def test_it_refuses_a_missing_or_wrong_token(self, client):
        assert client.get("/health/queues").status_code == 401
        assert client.get("/health/queue/email", headers={"Authorization": "Bearer nope"}).status_code == 401

    def test_it_accepts_the_bearer_token(self, client):
        assert client.get("/health/queues", headers={"Authorization": "Bearer s3cret-health"}).status_code == 200

    def test_it_accepts_a_staff_session_but_not_a_plain_user(self, client, django_user_model):
        user = django_user_model.objects.create_user("ops", password="pw")
        client.force_login(user)
        assert client.get("/health/queues").status_code == 401
        user.is_staff = True
        user.save()
        assert client.get("/health/queues").status_code == 200

    def test_it_leaves_liveness_open(self, client, db):
        assert client.get("/health/live").status_code == 200


@pytest.mark.django_db
class LivenessTests:
    def test_it_reports_database_and_redis_reachable(self, client):
        for url in ("/health/", "/health/live"):
            response = client.get(url)
            assert response.status_code == 200
            assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok", "queueRedis": "ok"}}

    def test_it_answers_503_when_redis_does_not_answer(self, client, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
        response = client.get("/health/")
        assert response.status_code == 503
        assert response.json()["checks"]["redis"] == "error: ConnectionError"
        assert "127.0.0.1:1" not in response.content.decode()


class OperationsSettingsTests:
    def settings_error(self, **env: str) -> str:
        code = "import django; django.setup()"
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=worker_env(**env), capture_output=True,
                                text=True)
        assert result.returncode != 0
        return result.stderr.strip().splitlines()[-1]

    def test_it_refuses_a_warning_threshold_above_its_critical_one(self):
        assert self.settings_error(HEALTH_FAILED_WARNING="300").endswith(
            "HEALTH_FAILED_WARNING must not be above HEALTH_FAILED_CRITICAL."
        )

    def test_it_refuses_an_unknown_log_format_or_a_bad_number(self):
        assert "LOG_FORMAT='xml' is not one of text, json" in self.settings_error(LOG_FORMAT="xml")
        assert "WORKER_MAINTENANCE_INTERVAL='soon' is not an integer" in self.settings_error(
            WORKER_MAINTENANCE_INTERVAL="soon"
        )
