from __future__ import annotations

import time

import pytest
import redis
from rq import Worker
from rq.job import JobStatus
from rq.registry import StartedJobRegistry

from broxiva.connections import get_redis
from broxiva.idempotency import (
    ClaimHeld,
    claim,
    complete,
    held_by_job,
    idempotency_key,
    idempotent,
    release,
    try_acquire_lock,
)
from broxiva.queues import enqueue, get_queue, rq_name
from broxiva.ratelimit import DeferJob
from tests.broxiva.claims_jobs import apply_once, bodies, effects
from tests.broxiva.coord_procs import run_processes
from tests.broxiva.ops_helpers import drained, kill_hard, start_fast_worker
from tests.workers import stop, wait_for

EVENT = "webhook:shopify:evt_123"
REDIS_KEY = "idempotency:webhook:shopify:evt_123"


def status(job_id: str) -> str | None:
    job = get_queue("fx-refresh").fetch_job(job_id)
    return job.get_status() if job else None


def _claim(index: int) -> tuple[bool, str]:
    result = try_acquire_lock(EVENT)
    return result.acquired, result.state


def _claim_many(index: int, count: int) -> list[int]:
    """Claim events 0..count-1 in order; return the ones this process acquired."""
    return [n for n in range(count) if try_acquire_lock(("webhook", "shopify", f"evt_{n}")).acquired]


class ConcurrentClaimTests:
    def test_exactly_one_of_50_concurrent_processes_acquires(self):
        outcomes = run_processes(_claim, 50)
        assert sum(acquired for acquired, _ in outcomes) == 1
        assert sorted(state for _, state in outcomes) == ["new"] + ["processing"] * 49

    def test_exactly_one_process_acquires_each_of_many_contended_keys(self):
        # One key gives a race a single chance; 2000 keys claimed in the same order by 10
        # processes give it thousands: a check-then-set claim (GET, then SET) fails this every time.
        count = 2000
        acquired = [n for per_process in run_processes(_claim_many, 10, count) for n in per_process]
        assert sorted(acquired) == list(range(count))

    def test_after_release_it_can_be_acquired_again_and_after_complete_never(self):
        first = try_acquire_lock(EVENT)
        assert first.acquired and first.state == "new" and first.key == REDIS_KEY
        assert release(EVENT, token=first.token) is True
        outcomes = run_processes(_claim, 10)
        assert sum(acquired for acquired, _ in outcomes) == 1

        assert complete(EVENT) is True
        outcomes = run_processes(_claim, 10)
        assert outcomes == [(False, "done")] * 10
        assert 86_000 < get_redis().ttl(REDIS_KEY) <= 86_400


class ClaimLifecycleTests:
    def test_a_processing_claim_expires_sooner_than_the_done_ttl(self, settings):
        settings.IDEMPOTENCY_PROCESSING_TTL = 1
        assert try_acquire_lock(EVENT).acquired
        assert 0 < get_redis().pttl(REDIS_KEY) <= 1000
        assert try_acquire_lock(EVENT).state == "processing"
        wait_for(lambda: try_acquire_lock(EVENT).acquired, timeout=5, what="stale claim to expire")

    def test_the_default_processing_expiry_is_at_most_an_hour(self):
        try_acquire_lock(EVENT)
        assert 0 < get_redis().ttl(REDIS_KEY) <= 3600

    def test_complete_keeps_the_ttl_the_key_was_claimed_with(self):
        result = try_acquire_lock(EVENT, ttl_seconds=600)
        assert complete(EVENT, token=result.token)
        assert 590 < get_redis().ttl(REDIS_KEY) <= 600
        assert try_acquire_lock(EVENT).state == "done"

    def test_release_does_not_undo_a_completed_key(self):
        try_acquire_lock(EVENT)
        complete(EVENT)
        assert release(EVENT) is False
        assert try_acquire_lock(EVENT).state == "done"

    def test_a_stale_processor_cannot_release_or_complete_its_successors_claim(self, settings):
        settings.IDEMPOTENCY_PROCESSING_TTL = 1
        stale = try_acquire_lock(EVENT)
        wait_for(lambda: not get_redis().exists(REDIS_KEY), timeout=5, what="claim expiry")
        current = try_acquire_lock(EVENT)
        assert current.acquired
        assert release(EVENT, token=stale.token) is False
        assert complete(EVENT, token=stale.token) is False
        assert try_acquire_lock(EVENT).state == "processing"
        assert complete(EVENT, token=current.token) is True

    def test_a_bare_release_or_complete_after_the_claim_expired_leaves_the_successors_claim(self, settings):
        # The issue's own API: try_acquire_lock, then release(key) / complete(key) without a token.
        # The claim expired while "processing" and another process took over: this slow processor
        # must neither free nor finish the newcomer's claim.
        settings.IDEMPOTENCY_PROCESSING_TTL = 1
        assert try_acquire_lock(EVENT).acquired
        wait_for(lambda: not get_redis().exists(REDIS_KEY), timeout=5, what="claim expiry")
        assert run_processes(_claim, 1) == [(True, "new")]
        successor = get_redis().get(REDIS_KEY)
        assert release(EVENT) is False
        assert complete(EVENT) is False
        assert get_redis().get(REDIS_KEY) == successor

    def test_a_bare_release_and_complete_still_act_on_the_callers_own_claim(self):
        assert try_acquire_lock(EVENT).acquired
        assert release(EVENT) is True
        assert try_acquire_lock(EVENT).acquired
        assert complete(EVENT) is True
        assert try_acquire_lock(EVENT).state == "done"

    def test_a_processor_that_finishes_after_its_claim_expired_still_marks_the_key_done(self, settings):
        # Nobody took the expired claim over: the work is done, so a replay must not run it again.
        settings.IDEMPOTENCY_PROCESSING_TTL = 1
        with claim(EVENT, ttl_seconds=600) as result:
            assert result.acquired
            wait_for(lambda: not get_redis().exists(REDIS_KEY), timeout=5, what="claim expiry")
        assert try_acquire_lock(EVENT).state == "done"
        assert 590 < get_redis().ttl(REDIS_KEY) <= 600

    def test_tenants_have_separate_keys(self, acme, globex):
        assert try_acquire_lock(EVENT, tenant=acme).key == "idempotency:acme:webhook:shopify:evt_123"
        assert try_acquire_lock(EVENT, tenant=globex).acquired
        assert try_acquire_lock(EVENT).acquired

    @pytest.mark.parametrize("key", ["", "webhook:shopify:", "webhook::x", "webhook:shopify:a b", "evt\n1", "a:*"])
    def test_it_refuses_a_bad_key(self, key):
        with pytest.raises(ValueError):
            try_acquire_lock(key)

    def test_a_forged_event_id_given_as_a_part_is_refused(self):
        for forged in ("x:y", "evt 1", "", "*"):
            with pytest.raises(ValueError):
                try_acquire_lock(("webhook", "shopify", forged))
        assert idempotency_key(("webhook", "shopify", "x-y")) == "idempotency:webhook:shopify:x-y"
        assert try_acquire_lock(("webhook", "shopify", "evt_123")).key == REDIS_KEY

    def test_it_fails_closed_when_redis_is_down(self, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/4"
        with pytest.raises(Exception, match="[Cc]onnect"):
            try_acquire_lock(EVENT)


class ClaimHelperTests:
    def test_it_completes_after_the_block(self):
        with claim(EVENT) as result:
            assert result.acquired
            assert try_acquire_lock(EVENT).state == "processing"
        assert try_acquire_lock(EVENT).state == "done"

    def test_it_releases_when_the_block_raises_so_a_retry_is_processed(self):
        with pytest.raises(RuntimeError):
            with claim(EVENT):
                raise RuntimeError("provider down")
        with claim(EVENT) as retry:
            assert retry.acquired

    def test_a_duplicate_sees_the_state_and_leaves_the_key_alone(self):
        first = try_acquire_lock(EVENT)
        with claim(EVENT) as duplicate:
            assert not duplicate.acquired and duplicate.state == "processing"
        assert get_redis().get(REDIS_KEY).decode().endswith(first.token)

    def test_the_decorator_runs_once_per_key_and_again_after_a_failure(self):
        calls: list[str] = []

        @idempotent(lambda event_id, fail=False: f"webhook:shopify:{event_id}")
        def handle(event_id: str, fail: bool = False) -> str:
            calls.append(event_id)
            if fail:
                raise RuntimeError("boom")
            return f"handled {event_id}"

        with pytest.raises(RuntimeError):
            handle("e1", fail=True)
        assert handle("e1") == "handled e1"
        assert handle("e1") is None
        assert handle("e2") == "handled e2"
        assert calls == ["e1", "e1", "e2"]


def _lease(job_id: str, execution_id: str) -> tuple[redis.Redis, str, str]:
    """List an execution in fx-refresh's started registry, as RQ does while the job runs."""
    queue = get_queue("fx-refresh")
    member = f"{job_id}:{execution_id}"
    queue.connection.zadd(StartedJobRegistry(queue=queue).key, {member: time.time() + 60})
    return queue.connection, StartedJobRegistry(queue=queue).key, member


class ClaimHolderTests:
    """Claims made in a job record it; a dead holder's claim is taken over, a live one's never."""

    def test_a_live_holder_keeps_its_claim_and_a_dead_ones_is_taken_over(self):
        connection, registry, member = _lease("job-a", "exec-1")
        with held_by_job(rq_name("fx-refresh"), "job-a", "exec-1"):
            first = try_acquire_lock(EVENT)
        assert first.acquired
        assert get_redis().get(REDIS_KEY).decode().endswith(f":job-a:exec-1:{rq_name('fx-refresh')}")

        live = try_acquire_lock(EVENT)
        assert (live.acquired, live.state) == (False, "processing")
        assert 1 <= live.retry_after <= 40

        connection.zrem(registry, member)  # what RQ's maintenance does to an abandoned execution
        taker = try_acquire_lock(EVENT)
        assert (taker.acquired, taker.state, taker.taken_over) == (True, "new", True)
        assert complete(EVENT, token=first.token) is False, "the dead holder cannot finish the taker's claim"
        assert release(EVENT, token=first.token) is False
        assert complete(EVENT, token=taker.token) is True

    def test_the_retry_of_the_same_job_takes_over_the_claim_of_its_dead_execution(self):
        with held_by_job(rq_name("fx-refresh"), "job-a", "exec-1"):
            assert try_acquire_lock(EVENT).acquired
        _lease("job-a", "exec-2")  # the retry runs: a new execution of the same job
        with held_by_job(rq_name("fx-refresh"), "job-a", "exec-2"):
            retry = try_acquire_lock(EVENT)
        assert retry.acquired and retry.taken_over

    def test_exactly_one_of_20_processes_takes_over_a_dead_claim(self):
        with held_by_job(rq_name("fx-refresh"), "job-a", "exec-1"):
            assert try_acquire_lock(EVENT).acquired  # never listed as started: dead
        outcomes = run_processes(_claim, 20)
        assert sorted(outcomes) == [(False, "processing")] * 19 + [(True, "new")]

    def test_a_claim_made_outside_a_job_is_never_taken_over(self, settings):
        settings.IDEMPOTENCY_PROCESSING_TTL = 5
        assert try_acquire_lock(EVENT).acquired  # a webhook view: no holder, it expires by itself
        held = try_acquire_lock(EVENT)
        assert (held.acquired, held.state) == (False, "processing")
        assert 1 <= held.retry_after <= 5, "never later than the claim's own expiry"

    def test_the_decorator_refuses_to_report_success_while_the_key_is_processing(self):
        calls: list[str] = []

        @idempotent(lambda event_id: f"webhook:shopify:{event_id}")
        def handle(event_id: str) -> str:
            calls.append(event_id)
            return "handled"

        other = try_acquire_lock(EVENT)
        with pytest.raises(ClaimHeld) as held:
            handle("evt_123")
        assert isinstance(held.value, DeferJob) and held.value.seconds >= 1
        assert calls == []
        complete(EVENT, token=other.token)
        assert handle("evt_123") is None
        assert calls == []

    def test_a_holder_with_a_bad_record_is_treated_as_unknown(self):
        get_redis().set(REDIS_KEY, "processing:86400:abcdef:job-a::", ex=60)
        assert try_acquire_lock(EVENT).state == "processing"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
class WorkerCrashTests:
    """``@idempotent`` jobs on real ``rqworker`` processes, killed mid-job (see test_recovery.py)."""

    def test_the_retry_of_a_job_killed_mid_job_does_the_work(self):
        # Issue 8, defect 7: the killed run left its claim "processing" (for an hour); its retry
        # returned None and finished with the work never done.
        job_id = enqueue("fx-refresh", apply_once, "crash", 30)
        victim = start_fast_worker("fx-refresh", scheduler=False)
        wait_for(lambda: bodies("crash"), timeout=30, what="the job to start its work")
        kill_hard(victim)

        replacement, output = drained(start_fast_worker("fx-refresh"))
        try:
            wait_for(lambda: status(job_id) == JobStatus.FINISHED, timeout=60, what="the job to be retried")
        finally:
            stop(replacement)

        job = get_queue("fx-refresh").fetch_job(job_id)
        assert job.return_value() == "applied", "the retry skipped the work"
        assert effects("crash") == 1
        assert bodies("crash") == [job_id, job_id]
        assert job.retries_left == 1, "the crash spent one attempt, the claim none"
        assert f"took over the claim of a dead holder job={job_id}" in output.join()
        assert try_acquire_lock("test:claims:crash").state == "done"

    def test_a_duplicate_while_the_first_still_runs_waits_and_never_runs_the_work(self):
        # Both workers listen before either job exists: one runs the first job, the other is idle
        # and takes the duplicate at once (starting a worker after the first job could outlast its
        # work on a loaded machine, and the duplicate would only meet finished work).
        worker_a = start_fast_worker("fx-refresh", scheduler=False)
        worker_b = start_fast_worker("fx-refresh")
        try:
            wait_for(lambda: len(Worker.all(queue=get_queue("fx-refresh"))) == 2, timeout=60,
                     what="both workers to listen")
            first = enqueue("fx-refresh", apply_once, "dup", 8)
            wait_for(lambda: bodies("dup"), timeout=30, what="the first job to start its work")
            duplicate = enqueue("fx-refresh", apply_once, "dup", 8)
            # It meets the live claim: deferred (no attempt spent), not finished with None.
            wait_for(lambda: status(duplicate) == JobStatus.SCHEDULED, timeout=30, what="the duplicate to defer")
            assert status(first) == JobStatus.STARTED
            wait_for(lambda: status(duplicate) == JobStatus.FINISHED, timeout=60, what="the duplicate to end")
        finally:
            for process in (worker_a, worker_b):
                if process is not None:
                    stop(process)

        queue = get_queue("fx-refresh")
        assert queue.fetch_job(first).return_value() == "applied"
        assert queue.fetch_job(duplicate).return_value() is None, "a duplicate of done work is skipped"
        assert queue.fetch_job(duplicate).retries_left == 2
        assert effects("dup") == 1
        assert bodies("dup") == [first]

    def test_a_duplicate_and_the_retry_of_a_killed_job_do_the_work_once_between_them(self):
        first = enqueue("fx-refresh", apply_once, "both", 30)
        victim = start_fast_worker("fx-refresh", scheduler=False)
        wait_for(lambda: bodies("both"), timeout=30, what="the first job to start its work")
        kill_hard(victim)
        duplicate = enqueue("fx-refresh", apply_once, "both", 30)

        replacement = start_fast_worker("fx-refresh")
        try:
            wait_for(lambda: status(first) == status(duplicate) == JobStatus.FINISHED, timeout=90,
                     what="the retry and the duplicate to end")
        finally:
            stop(replacement)

        queue = get_queue("fx-refresh")
        results = {job_id: queue.fetch_job(job_id).return_value() for job_id in (first, duplicate)}
        assert sorted(results.values(), key=str) == [None, "applied"]
        assert effects("both") == 1
        taker = next(job_id for job_id, result in results.items() if result == "applied")
        assert bodies("both") == [first, taker]
