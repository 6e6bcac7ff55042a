from __future__ import annotations

import email.utils
import pickle
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq.job import JobStatus

from broxiva.connections import get_redis
from broxiva.queues import enqueue, get_queue, policy
from broxiva.ratelimit import (
    DEFERRALS_META,
    DeferJob,
    RateLimiter,
    defer_for_retry_after,
    defer_if_limited,
    retry_after_seconds,
)
from tests.broxiva.coord_jobs import runs_key
from tests.broxiva.coord_procs import run_processes
from tests.broxiva.coord_racy import RacyRateLimiter
from tests.workers import running_worker, wait_for, worker_env

# 10 processes against 50 per second with a burst of 10, counted over a 3-second window.
PROCESSES, LIMIT, BURST, WINDOW = 10, 50, 10, 3.0
LOW, HIGH = LIMIT * WINDOW * 0.9 + BURST, LIMIT * WINDOW * 1.1 + BURST


def _hammer(index: int, limiter, run_for: float) -> list[float]:
    """Ask as fast as the limiter allows; return the times of the admitted calls."""
    admitted: list[float] = []
    deadline = time.time() + run_for
    while time.time() < deadline:
        wait = limiter.acquire()
        if wait == 0:
            admitted.append(time.time())
        else:
            time.sleep(min(wait, 0.05))
    return admitted


def admitted_in_window(limiter) -> int:
    """Count the calls admitted in the first WINDOW seconds after the first admission.

    Counting by window (not by how much the clients managed in their own 3 s) keeps the
    assertion about the limiter even when a loaded machine slows the clients down.
    """
    times = sorted(t for per_process in run_processes(_hammer, PROCESSES, limiter, WINDOW + 0.4) for t in per_process)
    assert times, "nothing was admitted"
    return sum(1 for t in times if t < times[0] + WINDOW)


def check_admitted(count: int) -> None:
    assert LOW <= count <= HIGH, f"{count} admitted in {WINDOW}s, expected {LOW:.0f}..{HIGH:.0f}"


class ConcurrencyTests:
    def test_ten_processes_share_one_budget(self):
        check_admitted(admitted_in_window(RateLimiter("test:shared", LIMIT, 1, burst=BURST)))

    def test_a_racy_read_compute_write_limiter_fails_the_same_check(self):
        count = admitted_in_window(RacyRateLimiter("test:racy", LIMIT, 1, burst=BURST))
        with pytest.raises(AssertionError):
            check_admitted(count)


class GCRATests:
    def test_without_burst_one_passes_then_the_next_waits_one_interval(self):
        limiter = RateLimiter("test:noburst", 10, 1.0)
        assert limiter.acquire() == 0
        wait = limiter.acquire()
        assert 0.05 < wait <= 0.1

    def test_the_burst_passes_at_once_on_top_of_the_steady_rate(self):
        limiter = RateLimiter("test:burst", 1, 60, burst=3)
        assert [limiter.acquire() for _ in range(4)] == [0, 0, 0, 0]
        assert 59 < limiter.acquire() <= 60

    def test_a_refused_call_takes_nothing_and_waiting_the_answer_is_enough(self):
        limiter = RateLimiter("test:wait", 5, 1.0)
        assert limiter.acquire() == 0
        before = get_redis().get(limiter.key())
        wait = limiter.acquire()
        assert wait > 0
        assert get_redis().get(limiter.key()) == before
        time.sleep(wait)
        assert limiter.acquire() == 0

    def test_instances_with_the_same_name_share_the_budget(self):
        assert RateLimiter("test:same", 1, 60).acquire() == 0
        assert RateLimiter("test:same", 1, 60).acquire() > 0

    def test_tenants_have_separate_budgets_under_ratelimit(self, acme, globex):
        limiter = RateLimiter("shopify:admin-api", 1, 60)
        assert limiter.key(acme) == "ratelimit:acme:shopify:admin-api"
        assert limiter.acquire(acme) == 0
        assert limiter.acquire(acme) > 0
        assert limiter.acquire(globex) == 0
        assert RateLimiter(("shopify", "admin-api"), 1, 60).acquire(globex) > 0  # a tuple names the same limit

    def test_the_counter_expires_once_the_limiter_is_idle(self):
        limiter = RateLimiter("test:ttl", 2, 10, burst=1)
        limiter.acquire()
        assert 0 < get_redis().pttl(limiter.key()) <= 5000

    @pytest.mark.parametrize(
        "args",
        [
            ("a b", 1, 1), ("x:", 1, 1), ("x", 0, 1), ("x", 1.5, 1), ("x", 1, 0), ("x", 1, 1, -1), ("x", 1, 1, 1.5),
            ("x", 2_000_000, 1), (("shopify", "a:b"), 1, 1), ("x", 1, float("nan")), ("x", 1, float("inf")),
        ],
    )
    def test_it_refuses_bad_arguments(self, args):
        with pytest.raises(ValueError):
            RateLimiter(*args)


    def test_it_raises_when_redis_is_down_instead_of_letting_calls_through(self, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/4"  # nothing listens there: connection refused
        with pytest.raises(redis.ConnectionError):
            RateLimiter("test:outage", 1, 60).acquire()


class DeferTests:
    def test_defer_if_limited_raises_the_wait(self):
        limiter = RateLimiter("test:defer", 1, 60)
        defer_if_limited(limiter)  # the one slot
        with pytest.raises(DeferJob) as info:
            defer_if_limited(limiter)
        assert 59 < info.value.seconds <= 60
        assert "test:defer" in info.value.reason

    def test_it_survives_pickling(self):
        # A job that fans out to a process pool gets the worker's exception back pickled.
        copy = pickle.loads(pickle.dumps(DeferJob(5, reason="upstream 429")))  # noqa: S301 -- our own bytes
        assert isinstance(copy, DeferJob) and (copy.seconds, copy.reason) == (5.0, "upstream 429")

    def test_it_refuses_a_nonsense_wait(self):
        for seconds in (-1, float("inf"), float("nan")):
            with pytest.raises(ValueError):
                DeferJob(seconds)

    def test_it_reads_retry_after_in_seconds_or_as_a_date(self):
        assert retry_after_seconds("120") == 120
        in_90s = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
        assert 85 <= retry_after_seconds(in_90s) <= 90
        assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past: now
        assert retry_after_seconds(None, default=30) == 30
        assert retry_after_seconds("soon", default=30) == 30
        assert retry_after_seconds("-5", default=30) == 30
        assert retry_after_seconds("999999") == 3600  # capped
        # Headers arrive decoded as Latin-1: "²" is a digit to str.isdigit() but not to float().
        assert retry_after_seconds("\u00b2", default=30) == 30
        assert retry_after_seconds("\u0661\u0662", default=30) == 30  # Arabic-Indic digits are not HTTP
        assert defer_for_retry_after("7").seconds == 7


def job_runs(marker: str) -> list[float]:
    return [float(t) for t in get_redis().lrange(runs_key(marker), 0, -1)]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
class DeferredJobWorkerTests:
    def test_a_deferred_job_runs_again_after_the_wait_with_its_attempts_untouched(self):
        queue = get_queue("fx-refresh")
        job_id = enqueue("fx-refresh", "tests.broxiva.coord_jobs.deferred_once", "once", 2.0)
        attempts_budget = policy("fx-refresh").attempts - 1
        with running_worker("fx-refresh"):
            wait_for(lambda: len(job_runs("once")) == 1, timeout=30, what="the first run")
            # Between the runs the job waits in the scheduled registry, not as a failure. (The
            # run is logged before the job raises: give the worker a moment to handle it.)
            wait_for(lambda: queue.fetch_job(job_id).get_status() != JobStatus.STARTED, timeout=10,
                     what="the worker to handle the deferral")
            job = queue.fetch_job(job_id)
            assert job.get_status() == JobStatus.SCHEDULED
            assert job.retries_left == attempts_budget
            assert job_id in queue.scheduled_job_registry.get_job_ids()
            wait_for(lambda: queue.fetch_job(job_id).get_status() == JobStatus.FINISHED, timeout=30,
                     what="the second run to finish")
        runs = job_runs("once")
        assert len(runs) == 2
        assert runs[1] - runs[0] >= 2.0
        job = queue.fetch_job(job_id)
        assert job.retries_left == attempts_budget
        assert job.return_value() == f"ran once retries_left={attempts_budget}"
        assert job.meta[DEFERRALS_META] == 1
        assert job_id not in queue.failed_job_registry.get_job_ids()

    def test_a_job_deferred_too_often_is_handled_as_a_failure(self):
        queue = get_queue("fx-refresh")
        job_id = enqueue("fx-refresh", "tests.broxiva.coord_jobs.always_limited", "forever")
        attempts_budget = policy("fx-refresh").attempts - 1
        with running_worker("fx-refresh", env=worker_env(JOB_MAX_DEFERRALS="2")):
            wait_for(lambda: queue.fetch_job(job_id).retries_left == attempts_budget - 1, timeout=30,
                     what="the third run to spend an attempt")
        job = queue.fetch_job(job_id)
        assert len(job_runs("forever")) == 3
        assert job.meta[DEFERRALS_META] == 2
