from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue, SimpleWorker
from rq.job import JobStatus
from rq_scheduler.utils import get_next_scheduled_time

from broxiva import schedules
from broxiva.queues import PRIORITY_ORDER, get_queue, policy
from broxiva.scheduler import next_cron_time
from broxiva.schedules import Entry
from tests.workers import ROOT, worker_env

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


class CoalesceTests:
    """Periodic work that missed its turn (no worker running) does not pile up."""

    def fire_all_due(self, scheduler) -> None:
        for job in scheduler.get_jobs():
            scheduler.connection.zadd(scheduler.scheduled_jobs_key, {job.id: time.time() - 1})
        scheduler.enqueue_jobs()

    def waiting(self) -> Counter:
        """Waiting jobs per function, over every queue."""
        counts: Counter = Counter()
        for name in PRIORITY_ORDER:
            queue = get_queue(name)
            counts.update(queue.fetch_job(job_id).func_name for job_id in queue.job_ids)
        return counts

    def test_it_keeps_at_most_one_waiting_run_per_entry_however_often_the_scheduler_fires(self):
        schedules.register(list(schedules.SCHEDULES))
        scheduler = schedules.get_scheduler()
        for _ in range(5):  # five minutes of a worker outage
            self.fire_all_due(scheduler)
        assert self.waiting() == Counter({entry.func: 1 for entry in schedules.SCHEDULES})

    def test_it_fires_again_once_the_waiting_run_has_been_taken(self):
        schedules.register([MINUTELY])
        scheduler = schedules.get_scheduler()
        self.fire_all_due(scheduler)
        queue = get_queue("email")
        [first] = queue.job_ids
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        assert queue.fetch_job(first).get_status() == JobStatus.FINISHED
        self.fire_all_due(scheduler)
        self.fire_all_due(scheduler)
        [second] = queue.job_ids
        assert second != first


@pytest.mark.django_db(transaction=True)
class PrefixTests:
    """Two deployments (QUEUE_PREFIX) sharing one Redis DB each keep their own schedule."""

    def in_deployment(self, prefix: str, code: str) -> dict:
        script = (
            "import json, time\n"
            "from broxiva import schedules\n"
            "scheduler = schedules.get_scheduler()\n" + code
        )
        result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", script], cwd=ROOT,
                                env=worker_env(QUEUE_PREFIX=prefix), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    REGISTER = "print(json.dumps(schedules.register()))\n"
    FIRE = (
        "for job in scheduler.get_jobs():\n"
        "    scheduler.connection.zadd(scheduler.scheduled_jobs_key, {job.id: time.time() - 1})\n"
        "scheduler.enqueue_jobs()\n"
        "print(json.dumps(sorted(schedules.registered(scheduler))))\n"
    )

    def test_it_keeps_each_prefix_entries_and_fires_them_into_its_own_queues(self):
        prod = self.in_deployment("prod", self.REGISTER)
        staging = self.in_deployment("staging", self.REGISTER)
        assert prod["added"] and prod["unchanged"] == []
        assert sorted(staging["added"]) == sorted(prod["added"]) and staging["unchanged"] == []
        assert self.in_deployment("staging", self.REGISTER)["unchanged"] == staging["added"]

        entries = sorted(prod["added"])
        assert self.in_deployment("prod", self.FIRE) == entries
        assert self.in_deployment("staging", self.FIRE) == entries
        client = get_queue("email").connection
        for entry in schedules.collect():
            for prefix in ("prod", "staging"):
                queue = Queue(f"{prefix}:{entry.queue}", connection=client)
                assert [queue.fetch_job(i).func_name for i in queue.job_ids].count(entry.func) == 1, (prefix, entry.id)

    def test_it_refuses_a_prefix_that_cannot_be_part_of_a_job_id(self):
        result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "check"], cwd=ROOT,
                                env=worker_env(QUEUE_PREFIX="prod:eu"), capture_output=True, text=True, timeout=120)
        assert result.returncode != 0 and "broxiva.E003" in result.stderr
