"""Prometheus metrics: django-rq's families plus the health gauges, behind a token."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq.job import JobStatus

from broxiva.queues import get_queue
from tests.broxiva.ops_helpers import fill_queue
from tests.workers import ROOT, worker_env

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class MetricsTests:
    def test_it_exports_health_gauges_and_django_rq_metrics_to_the_token(self, client, settings):
        settings.METRICS_TOKEN = "m3trics"
        fill_queue("email", 3)
        fill_queue("product-sync", 5001)

        response = client.get("/metrics", headers={"Authorization": "Bearer m3trics"})

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        values = samples(response.content.decode())
        assert values[("broxiva_queue_waiting_jobs", (("queue", "email"),))] == 3
        assert values[("broxiva_queue_status", (("queue", "email"),))] == 1  # jobs wait, no worker: warning
        assert values[("broxiva_queue_status", (("queue", "product-sync"),))] == 2
        assert values[("broxiva_queue_workers", (("queue", "email"),))] == 0
        assert values[("broxiva_queue_oldest_waiting_age_seconds", (("queue", "fx-refresh"),))] == 0
        assert values[("rq_jobs", (("queue", "email"), ("status", "queued")))] == 3  # django-rq's family names
        assert values[("rq_jobs", (("queue", "product-sync"), ("status", "queued")))] == 5001

    def test_a_scrape_never_runs_the_registry_clean_ups(self, admin_client):
        # An abandoned job (its lease expired): only a worker's maintenance, under its lock, may
        # hand it to the retry policy. django-rq's own collector would do it on every scrape.
        queue = get_queue("fx-refresh")
        [job_id] = fill_queue("fx-refresh", 1)
        job = queue.fetch_job(job_id)
        queue.remove(job)
        job.set_status(JobStatus.STARTED)
        queue.connection.zadd(queue.started_job_registry.key, {f"{job.id}:exec1": time.time() - 60})

        response = admin_client.get("/metrics")

        assert response.status_code == 200
        assert samples(response.content.decode())[("rq_jobs", (("queue", "fx-refresh"), ("status", "started")))] == 1
        assert queue.connection.zcard(queue.started_job_registry.key) == 1
        assert queue.fetch_job(job.id).get_status() == JobStatus.STARTED
        assert queue.scheduled_job_registry.get_job_ids(cleanup=False) == []

    def test_it_refuses_anonymous_and_wrong_tokens(self, client, settings):
        settings.METRICS_TOKEN = "m3trics"
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer health"}).status_code == 401

    def test_without_a_token_only_staff_can_read_it(self, client, settings, admin_client):
        settings.METRICS_TOKEN = ""
        assert client.get("/metrics").status_code == 401
        assert admin_client.get("/metrics").status_code == 200

    def test_the_metrics_token_defaults_to_the_health_token(self):
        code = "import django; django.setup(); from django.conf import settings; print(settings.METRICS_TOKEN)"
        env = worker_env(HEALTH_TOKEN="shared-token")
        env.pop("METRICS_TOKEN", None)
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "shared-token"
