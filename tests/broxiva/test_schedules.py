from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from rq_scheduler.utils import get_next_scheduled_time

from broxiva import schedules
from broxiva.queues import get_queue, policy
from broxiva.scheduler import next_cron_time
from broxiva.schedules import Entry

DAILY = Entry(id="test-daily", queue="sitemap-generation", func="tests.jobs.sample.record",
              cron="0 3 * * *", description="03:00 UTC every day", kwargs={"marker": "daily"})
QUARTER = Entry(id="test-quarter", queue="fx-refresh", func="tests.jobs.sample.greet_job",
                cron="*/15 * * * *", description="every 15 minutes", kwargs={"tenant_id": 1, "name": "fx"})
MINUTELY = Entry(id="test-minutely", queue="email", func="tests.jobs.sample.record",
                 interval=60, description="every minute", kwargs={"marker": "m"})


@pytest.fixture
def new_york():
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = old
    time.tzset()


def scheduled(scheduler) -> dict[str, float]:
    return {job_id.decode(): score for job_id, score in scheduler.connection.zrange(
        scheduler.scheduled_jobs_key, 0, -1, withscores=True)}


class EntryTests:
    def test_it_refuses_malformed_entries(self):
        with pytest.raises(ValueError, match="kebab-case"):
            Entry(id="Bad_Id", queue="email", func="x.y", description="", interval=5)
        with pytest.raises(ValueError, match="exactly one"):
            Entry(id="both", queue="email", func="x.y", description="", interval=5, cron="* * * * *")
        with pytest.raises(ValueError, match="invalid cron"):
            Entry(id="cron", queue="email", func="x.y", description="", cron="61 * * * *")

    def test_it_refuses_an_entry_whose_job_would_be_refused(self):
        bad = Entry(id="bad-payload", queue="email", func="tests.jobs.sample.greet_job", description="", interval=5)
        with pytest.raises(ValueError, match="tenant_id"):
            schedules.register([bad])


class RegisterTests:
    def test_it_registers_each_entry_once_however_often_it_runs(self):
        first = schedules.register([DAILY, QUARTER, MINUTELY])
        second = schedules.register([DAILY, QUARTER, MINUTELY])
        assert sorted(first["added"]) == ["test-daily", "test-minutely", "test-quarter"]
        assert sorted(second["unchanged"]) == ["test-daily", "test-minutely", "test-quarter"]
        assert second["added"] == second["updated"] == second["removed"] == []
        scheduler = schedules.get_scheduler()
        assert sorted(scheduled(scheduler)) == [
            "periodic-test-daily", "periodic-test-minutely", "periodic-test-quarter"
        ]

    def test_it_removes_entries_deleted_from_the_code_and_replaces_changed_ones(self):
        schedules.register([DAILY, QUARTER])
        changed = Entry(id="test-daily", queue="sitemap-generation", func="tests.jobs.sample.record",
                        cron="30 4 * * *", description="04:30 UTC", kwargs={"marker": "daily"})
        report = schedules.register([changed])
        assert report["removed"] == ["test-quarter"] and report["updated"] == ["test-daily"]
        scheduler = schedules.get_scheduler()
        assert list(scheduled(scheduler)) == ["periodic-test-daily"]
        assert scheduler.connection.exists("rq:job:periodic-test-quarter") == 0
        due = datetime.fromtimestamp(scheduled(scheduler)["periodic-test-daily"], UTC)
        assert (due.hour, due.minute) == (4, 30)

    @pytest.mark.filterwarnings("ignore::FutureWarning")
    def test_it_reads_cron_in_utc_whatever_the_host_timezone(self, new_york):
        schedules.register([DAILY])
        due = datetime.fromtimestamp(scheduled(schedules.get_scheduler())["periodic-test-daily"], UTC)
        assert (due.hour, due.minute) == (3, 0)
        assert timedelta(0) < due - datetime.now(UTC) <= timedelta(days=1)
        # rq-scheduler on its own would have fired at 03:00 New York time (07:00 or 08:00 UTC).
        assert get_next_scheduled_time("0 3 * * *").astimezone(UTC).hour in (7, 8)


class FireTests:
    def test_it_enqueues_a_fresh_job_with_the_queue_policy_and_rearms_in_utc(self, new_york):
        schedules.register([DAILY])
        scheduler = schedules.get_scheduler()
        scheduler.connection.zadd(scheduler.scheduled_jobs_key, {"periodic-test-daily": time.time() - 1})
        scheduler.enqueue_jobs()
        queue = get_queue("sitemap-generation")
        [job_id] = queue.job_ids
        assert job_id != "periodic-test-daily"
        job = queue.fetch_job(job_id)
        assert job.kwargs == {"marker": "daily"}
        assert job.retries_left == policy("sitemap-generation").retries
        assert job.timeout == policy("sitemap-generation").timeout
        assert 0 < job.result_ttl < 10**9
        due = datetime.fromtimestamp(scheduled(scheduler)["periodic-test-daily"], UTC)
        assert due == next_cron_time("0 3 * * *")

    def test_it_rearms_an_interval_entry(self):
        schedules.register([MINUTELY])
        scheduler = schedules.get_scheduler()
        scheduler.connection.zadd(scheduler.scheduled_jobs_key, {"periodic-test-minutely": time.time() - 1})
        scheduler.enqueue_jobs()
        assert get_queue("email").count == 1
        assert 50 < scheduled(scheduler)["periodic-test-minutely"] - time.time() <= 60
