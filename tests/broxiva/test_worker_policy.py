"""The queue policy as a real ``rqworker --with-scheduler`` process applies it."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from rq.job import JobStatus

from broxiva.queues import enqueue, get_queue
from tests.jobs.sample import always_fails, fails_permanently, record, sleeps
from tests.workers import running_worker, start_worker, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def attempts(marker: str) -> list[float]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    return [float(t) for t in client.lrange(f"test:attempts:{marker}", 0, -1)]


class RetryTests:
    def test_it_runs_a_failing_job_three_times_with_backoff_then_fails_it(self):
        job_id = enqueue("fx-refresh", always_fails, "fx")
        failed = get_queue("fx-refresh").failed_job_registry
        with running_worker("fx-refresh"):
            wait_for(lambda: job_id in failed.get_job_ids(), timeout=45, what="the job to land in the failed registry")
        runs = attempts("fx")
        assert len(runs) == 3, runs
        first_wait, second_wait = runs[1] - runs[0], runs[2] - runs[1]
        # Policy: 5 s then 10 s. RQ keeps scheduled times in whole seconds (truncated) and its
        # scheduler polls once a second, so each wait may be up to 1 s shorter or a little longer.
        assert 4 <= first_wait < 8, first_wait
        assert 9 <= second_wait < 13, second_wait
        job = get_queue("fx-refresh").fetch_job(job_id)
        assert job.get_status() == JobStatus.FAILED
        assert job.retries_left == 0
        assert "boom fx" in job.latest_result().exc_string

    def test_it_fails_a_permanent_error_at_once_without_spending_retries(self):
        job_id = enqueue("fx-refresh", fails_permanently, "perm")
        failed = get_queue("fx-refresh").failed_job_registry
        with running_worker("fx-refresh"):
            wait_for(lambda: job_id in failed.get_job_ids(), timeout=30, what="the job to fail")
        assert len(attempts("perm")) == 1
        assert get_queue("fx-refresh").scheduled_job_registry.get_job_ids() == []
        assert "invalid key for perm" in get_queue("fx-refresh").fetch_job(job_id).latest_result().exc_string

    def test_the_non_forking_worker_applies_the_same_policy(self):
        job_id = enqueue("fx-refresh", fails_permanently, "simple")
        failed = get_queue("fx-refresh").failed_job_registry
        with running_worker("fx-refresh", extra_args=("--worker-class", "broxiva.worker.BroxivaSimpleWorker")):
            wait_for(lambda: job_id in failed.get_job_ids(), timeout=30, what="the job to fail")
        assert len(attempts("simple")) == 1

    def test_it_finishes_a_job_that_succeeds(self):
        job_id = enqueue("email", record, "hello")
        with running_worker("email", burst=True, scheduler=False) as worker:
            worker.wait(timeout=60)
        job = get_queue("email").fetch_job(job_id)
        assert job.get_status() == JobStatus.FINISHED
        assert job.return_value() == "hello"


class TimeoutTests:
    def test_it_stops_a_job_that_outlives_the_queue_timeout_and_retries_it(self, settings):
        settings.QUEUE_OVERRIDES = {"translation": {"timeout": 2, "attempts": 2, "backoff_base": 1}}
        job_id = enqueue("translation", sleeps, "slow", 20)
        failed = get_queue("translation").failed_job_registry
        with running_worker("translation"):
            wait_for(lambda: job_id in failed.get_job_ids(), timeout=45, what="the timed-out job to fail")
        assert len(attempts("slow")) == 2
        client = redis.Redis.from_url(settings.REDIS_URL)
        assert client.llen("test:done:slow") == 0, "the job was not stopped"
        job = get_queue("translation").fetch_job(job_id)
        assert "JobTimeoutException" in job.latest_result().exc_string


class ShutdownTests:
    def test_it_finishes_the_current_job_on_sigterm_then_exits(self):
        job_id = enqueue("email", sleeps, "warm", 3)
        worker = start_worker("email", scheduler=False)
        wait_for(lambda: attempts("warm"), timeout=30, what="the job to start")
        output = stop(worker, timeout=30)  # SIGTERM, as a process manager sends it
        assert worker.returncode == 0, output
        assert "warm shut down requested" in output
        job = get_queue("email").fetch_job(job_id)
        assert job.get_status() == JobStatus.FINISHED, output
