from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from broxiva.queues import enqueue, get_queue
from broxiva.schedules import Entry
from tests.broxiva.test_queues import QUEUE_TABLE as DESIGN_TABLE
from tests.jobs.sample import always_fails, record


def run(*args: str) -> str:
    out = StringIO()
    call_command("queues", *args, stdout=out)
    return out.getvalue()


class QueuesCommandTests:
    def test_it_prints_the_design_table_as_json(self):
        report = json.loads(run("--json"))
        assert list(report)[:2] == ["maintenance", "email"]
        assert set(report) == {*DESIGN_TABLE, "webhook-delivery", "maintenance"}
        assert {e["id"] for e in report["maintenance"]["periodic"]} == {
            "queue-health-check", "retention-sweep", "recovery-sweep", "outbox-relay"}
        for name, (attempts, base, cap) in DESIGN_TABLE.items():
            q = report[name]
            assert (q["attempts"], q["backoff_base"], q["max_delay"]) == (attempts, base, cap), name
            assert (q["keep_completed"], q["keep_failed"]) == (100, 500)
            for key in ("timeout", "waiting", "active", "scheduled", "failed", "workers"):
                assert isinstance(q[key], int), (name, key)
        assert report["fx-refresh"]["timeout"] == 60

    def test_it_counts_live_jobs(self):
        enqueue("email", record, "a")
        enqueue("email", record, "b")
        job_id = enqueue("fx-refresh", always_fails, "x")
        queue = get_queue("fx-refresh")
        job = queue.fetch_job(job_id)
        queue.remove(job)
        queue.failed_job_registry.add(job, ttl=60, exc_string="boom")
        report = json.loads(run("--json"))
        assert report["email"]["waiting"] == 2
        assert report["fx-refresh"]["waiting"] == 0 and report["fx-refresh"]["failed"] == 1

    def test_it_shows_the_configured_overrides(self, settings):
        settings.QUEUE_OVERRIDES = {"product-sync": {"timeout": 1800}}
        assert json.loads(run("--json"))["product-sync"]["timeout"] == 1800

    def test_it_lists_periodic_entries(self, monkeypatch):
        entry = Entry(id="nightly-thing", queue="sitemap-generation", func="tests.jobs.sample.record",
                      cron="0 3 * * *", description="03:00 UTC daily", kwargs={"marker": "n"})
        monkeypatch.setattr("broxiva.management.commands.queues.entries_by_queue",
                            lambda: {"sitemap-generation": [entry]})
        report = json.loads(run("--json"))
        assert report["sitemap-generation"]["periodic"][0]["id"] == "nightly-thing"
        text = run()
        assert "nightly-thing" in text and "0 3 * * *" in text
        assert text.splitlines()[2].startswith("maintenance")

    @pytest.mark.parametrize("flag", [[], ["--json"]])
    def test_it_runs_with_no_jobs_at_all(self, flag):
        assert run(*flag)
