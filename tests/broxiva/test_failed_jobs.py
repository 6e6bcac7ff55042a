"""Failed-job tooling: retry_jobs and clean_jobs, and requeue parity with the django-rq dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import redis
from django.conf import settings
from django.core.management import CommandError, call_command
from rq import SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.utils import utcformat

from broxiva.queues import enqueue, get_queue, rq_name
from tests.jobs.sample import always_fails, record


def run_burst(queue_name: str) -> None:
    """Run the queue's jobs with a real RQ worker, in this process."""
    queue = get_queue(queue_name)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def failed_jobs(count: int, queue_name: str = "fx-refresh") -> list[str]:
    """Jobs that failed for real on their last attempt (retries spent)."""
    ids = [enqueue(queue_name, always_fails, f"f{n}") for n in range(count)]
    connection = get_queue(queue_name).connection
    for job_id in ids:
        connection.hset(Job.key_for(job_id), "retries_left", 0)
    run_burst(queue_name)
    assert set(FailedJobRegistry(queue=get_queue(queue_name)).get_job_ids(cleanup=False)) == set(ids)
    return ids


def command(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def age(job_id: str, hours: float, queue_name: str = "fx-refresh") -> None:
    get_queue(queue_name).connection.hset(
        Job.key_for(job_id), "ended_at", utcformat(datetime.now(UTC) - timedelta(hours=hours))
    )


class RetryJobsTests:
    def test_it_requeues_the_given_failed_jobs_without_restoring_their_budget(self):
        first, second, third = failed_jobs(3)

        out = command("retry_jobs", "fx-refresh", "--job-id", first, second)

        queue = get_queue("fx-refresh")
        assert f"requeued {first} tests.jobs.sample.always_fails (retries left after requeue: 0)" in out
        assert out.strip().endswith("requeued 2 failed job(s) on fx-refresh")
        assert queue.job_ids == [first, second]
        assert FailedJobRegistry(queue=queue).get_job_ids(cleanup=False) == [third]
        assert queue.fetch_job(first).get_status() == JobStatus.QUEUED and queue.fetch_job(first).retries_left == 0

        run_burst("fx-refresh")  # it fails again: straight back to failed, one more run, no retries
        assert queue.fetch_job(first).get_status() == JobStatus.FAILED
        assert redis.Redis.from_url(settings.REDIS_URL).llen("test:attempts:f0") == 2

    def test_it_can_restore_the_full_budget(self):
        [job_id] = failed_jobs(1)
        out = command("retry_jobs", "fx-refresh", "--all", "--reset-attempts")
        assert "(retries left after requeue: 2)" in out
        assert get_queue("fx-refresh").fetch_job(job_id).retries_left == 2

    def test_a_dry_run_changes_nothing(self):
        ids = failed_jobs(2)
        out = command("retry_jobs", "fx-refresh", "--all", "--dry-run")
        assert out.strip().endswith("dry run: would requeue 2 failed job(s) on fx-refresh")
        assert sorted(FailedJobRegistry(queue=get_queue("fx-refresh")).get_job_ids(cleanup=False)) == sorted(ids)
        assert get_queue("fx-refresh").count == 0

    def test_it_requeues_the_rest_and_reports_ids_it_could_not_requeue(self):
        [failed] = failed_jobs(1)
        finished = enqueue("fx-refresh", record, "ok")
        run_burst("fx-refresh")
        with pytest.raises(CommandError) as error:
            command("retry_jobs", "fx-refresh", "--job-id", failed, finished, "nope")
        assert str(error.value) == (
            f"{finished}: not in the failed registry of fx-refresh (status finished); "
            "nope: not in the failed registry of fx-refresh (no such job)"
        )
        assert get_queue("fx-refresh").job_ids == [failed]

    def test_it_does_not_requeue_a_job_enqueued_again_under_the_same_id(self):
        [job_id] = failed_jobs(1)
        enqueue("fx-refresh", record, "second run", job_id=job_id)  # RQ keeps the stale failed entry

        with pytest.raises(CommandError) as error:
            command("retry_jobs", "fx-refresh", "--all")

        assert str(error.value) == f"{job_id}: not requeued, it is queued again under this id"
        assert get_queue("fx-refresh").job_ids == [job_id], "one run, not two"

    def test_it_refuses_an_unknown_queue_or_a_missing_selection(self):
        with pytest.raises(CommandError, match="unknown queue 'fx'"):
            command("retry_jobs", "fx", "--all")
        with pytest.raises(CommandError, match="one of the arguments --job-id --all is required"):
            command("retry_jobs", "fx-refresh")


@pytest.mark.django_db(transaction=True)
class DashboardParityTests:
    def test_the_command_and_the_dashboard_requeue_leave_a_job_in_the_same_state(self, admin_client):
        by_command, by_dashboard = failed_jobs(2)
        command("retry_jobs", "fx-refresh", "--job-id", by_command)
        index = list(settings.RQ_QUEUES).index(rq_name("fx-refresh"))
        response = admin_client.post(f"/django-rq/queues/{index}/{by_dashboard}/requeue/")
        assert response.status_code == 302

        queue = get_queue("fx-refresh")
        fields = ("status", "retries_left", "origin", "started_at", "ended_at")
        one, other = (queue.connection.hmget(Job.key_for(i), fields) for i in (by_command, by_dashboard))
        assert dict(zip(fields, one, strict=True)) == dict(zip(fields, other, strict=True))
        assert dict(zip(fields, one, strict=True))["status"] == b"queued"
        assert queue.job_ids == [by_command, by_dashboard]


class CleanJobsTests:
    def test_it_deletes_failed_jobs_older_than_the_limit_with_their_data(self):
        old, older, recent = failed_jobs(3)
        age(old, 25)
        age(older, 24 * 7)
        age(recent, 1)

        out = command("clean_jobs", "fx-refresh", "--state", "failed", "--older-than", "24h")

        queue = get_queue("fx-refresh")
        assert out.strip().endswith("deleted 2 failed job(s) older than 24h from fx-refresh")
        assert FailedJobRegistry(queue=queue).get_job_ids(cleanup=False) == [recent]
        assert [k for k in queue.connection.keys("rq:*") if old.encode() in k or older.encode() in k] == []
        assert Job.exists(recent, connection=queue.connection)

    def test_a_dry_run_lists_but_keeps_them(self):
        [job_id] = failed_jobs(1)
        age(job_id, 48)
        out = command("clean_jobs", "fx-refresh", "--older-than", "1d", "--dry-run")
        assert f"would delete {job_id}" in out and "dry run: would delete 1 failed job(s)" in out
        assert Job.exists(job_id, connection=get_queue("fx-refresh").connection)

    def test_it_cleans_finished_jobs_too(self):
        ids = [enqueue("email", record, f"r{n}") for n in range(3)]
        run_burst("email")
        age(ids[0], 2, "email")
        out = command("clean_jobs", "email", "--state", "finished", "--older-than", "90m")
        assert "deleted 1 finished job(s)" in out
        assert sorted(FinishedJobRegistry(queue=get_queue("email")).get_job_ids(cleanup=False)) == sorted(ids[1:])

    def test_it_leaves_a_job_enqueued_again_under_the_same_id_alone(self):
        [job_id] = failed_jobs(1)
        queue = get_queue("fx-refresh")
        failed_key = FailedJobRegistry(queue=queue).key
        # It failed two days ago (the registry's score is its expiry: end + failure TTL) ...
        queue.connection.zincrby(failed_key, -48 * 3600, job_id)
        # ... and a new job is enqueued under its id now: RQ keeps the stale failed entry.
        enqueue("fx-refresh", record, "second run", job_id=job_id)

        out = command("clean_jobs", "fx-refresh", "--older-than", "24h")

        assert out == "deleted 0 failed job(s) older than 24h from fx-refresh\n"
        assert queue.job_ids == [job_id] and queue.fetch_job(job_id).get_status() == JobStatus.QUEUED
        run_burst("fx-refresh")
        assert queue.fetch_job(job_id).return_value() == "second run"

    def test_it_refuses_a_bad_duration_or_state(self):
        with pytest.raises(CommandError, match="'24 hours' is not a duration such as 90s, 30m, 24h or 7d"):
            command("clean_jobs", "fx-refresh", "--older-than", "24 hours")
        with pytest.raises(CommandError, match="invalid choice: 'queued'"):
            command("clean_jobs", "fx-refresh", "--state", "queued", "--older-than", "1h")
