"""Crash recovery with real workers killed by SIGKILL: nothing is lost, every job ends."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import redis
from django.conf import settings
from rq import Queue
from rq.exceptions import DequeueTimeout
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from broxiva import jobs
from broxiva.connections import get_redis
from broxiva.locks import lock_key
from broxiva.queues import enqueue, enqueue_many, get_queue
from broxiva.recovery import acquire_maintenance_lock, detection_bound, heartbeat_ttl, maintain_queue
from broxiva.retention import TrimReport
from broxiva.schedules import SCHEDULES
from broxiva.worker import BroxivaWorker
from tests.broxiva.ops_helpers import drained, kill_hard, start_fast_worker
from tests.broxiva.ops_jobs import nap, runs
from tests.workers import stop, wait_for


def status(job_id: str, queue: str = "fx-refresh") -> str | None:
    job = get_queue(queue).fetch_job(job_id)
    return job.get_status() if job else None


class RecoverySettingsTests:
    def test_it_finds_abandoned_jobs_within_two_minutes_with_the_default_settings(self):
        queue = get_queue("email")
        worker = BroxivaWorker([queue], connection=queue.connection, worker_ttl=420)  # rqworker's default ttl
        job = Job.create("tests.jobs.sample.record", args=("x",), connection=queue.connection, timeout=1800)

        lease, maintenance = worker.get_heartbeat_ttl(job), worker.maintenance_interval

        assert (lease, maintenance, worker.dequeue_timeout) == (40, 30, 30)
        assert worker.job_monitoring_interval == 10
        # Dead at the last renewal: the lease runs out, then the next maintenance (at most one
        # interval later, idle or not) hands the job to its policy.
        assert lease + maintenance == detection_bound() <= 120

    def test_the_recovery_sweep_is_a_periodic_entry(self):
        entry = next(e for e in SCHEDULES if e.id == "recovery-sweep")
        assert entry.func == "broxiva.jobs.recovery_sweep_job" and entry.cron == "* * * * *"
        # The sweep is the path when every worker of the queue is busy: the lease, one period of
        # the entry and one poll of `manage.py scheduler` (10 s by default) must fit in 2 minutes.
        lease = heartbeat_ttl(settings.WORKER_JOB_MONITORING_INTERVAL)
        assert lease + 60 + 10 <= 120


class MaintenanceLockTests:
    def test_a_holder_whose_lease_ran_out_leaves_the_next_holder_lock_alone(self, monkeypatch):
        queue = get_queue("fx-refresh")
        client, key = get_redis(), lock_key(("queue-maintenance", "fx-refresh"))
        second = {}

        def trim_while_the_lease_runs_out(name, client_=None):
            # A is still maintaining the queue when its lease expires, and B (another worker) takes the lock.
            client.pexpire(key, 1)
            wait_for(lambda: not client.exists(key), timeout=5, what="A's lease to run out")
            second["lock"] = acquire_maintenance_lock(queue)
            return TrimReport(name)

        monkeypatch.setattr("broxiva.retention.trim_queue", trim_while_the_lease_runs_out)
        maintain_queue(queue, exception_handlers=[], handle_failure=None)  # A

        assert second["lock"].acquired
        assert client.get(key) == second["lock"].lock_id.encode(), "A's release freed B's lock"
        assert not acquire_maintenance_lock(queue).acquired  # so a third process still waits its turn

    def test_it_takes_one_lock_per_queue_and_prefix(self):
        first = acquire_maintenance_lock(get_queue("fx-refresh"))
        assert first.acquired and not acquire_maintenance_lock(get_queue("fx-refresh")).acquired
        assert acquire_maintenance_lock(get_queue("email")).acquired
        assert acquire_maintenance_lock(Queue("staging:fx-refresh", connection=get_queue("email").connection)).acquired


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
class KilledWorkerTests:
    def test_it_retries_a_job_whose_worker_was_killed_mid_job(self):
        job_id = enqueue("fx-refresh", nap, "killed", 30, first_only=True)
        # The first worker runs without RQ's scheduler, so the replacement takes the scheduler
        # lock at once (a dead holder's lock lasts RQ's 61 s lease; see docs/operations.md "Crash recovery").
        victim, _ = drained(start_fast_worker("fx-refresh", scheduler=False))
        wait_for(lambda: runs("killed") == 1, timeout=30, what="the job to start")
        kill_hard(victim)
        killed_at = time.monotonic()
        assert status(job_id) == JobStatus.STARTED

        replacement, output = drained(start_fast_worker("fx-refresh"))
        try:
            wait_for(lambda: status(job_id) == JobStatus.FINISHED, timeout=60, what="the job to be retried")
        finally:
            stop(replacement)
        recovered_in = time.monotonic() - killed_at

        assert runs("killed") == 2
        job = get_queue("fx-refresh").fetch_job(job_id)
        assert job.retries_left == 1, "the crash spent one of the 3 attempts"
        assert recovered_in < 120
        assert f"abandoned job job_id={job_id} queue=fx-refresh" in output.join()

    def test_it_fails_a_killed_job_that_was_on_its_last_attempt(self):
        job_id = enqueue("fx-refresh", nap, "last", 30)
        get_queue("fx-refresh").connection.hset(Job.key_for(job_id), "retries_left", 0)  # 3rd of 3 attempts
        victim, _ = drained(start_fast_worker("fx-refresh", scheduler=False))
        wait_for(lambda: runs("last") == 1, timeout=30, what="the job to start")
        kill_hard(victim)

        # No worker left: the periodic sweep finds it once the lease (1 + 2 s) has run out.
        found = wait_for(lambda: jobs.recovery_sweep_job()["abandoned"], timeout=20, what="the sweep to find it")

        assert found == {"fx-refresh": [job_id]}
        assert status(job_id) == JobStatus.FAILED
        assert job_id in FailedJobRegistry(queue=get_queue("fx-refresh")).get_job_ids(cleanup=False)
        assert "AbandonedJobError" in get_queue("fx-refresh").fetch_job(job_id).latest_result().exc_string

    def test_it_recovers_a_job_popped_by_a_worker_that_died_before_starting_it(self):
        job_id = enqueue("fx-refresh", nap, "popped", 0)
        queue = get_queue("fx-refresh")
        # What a worker's BLMOVE does just before it registers the job as started.
        queue.connection.lmove(queue.key, queue.intermediate_queue_key)

        worker, output = drained(start_fast_worker("fx-refresh"))
        try:
            wait_for(lambda: status(job_id) == JobStatus.FINISHED, timeout=40, what="the popped job to run")
        finally:
            stop(worker)
        assert runs("popped") == 1
        assert queue.connection.llen(queue.intermediate_queue_key) == 0
        assert f"abandoned job job_id={job_id} queue=fx-refresh was popped but never started" in output.join()


class MultiQueueDequeueTests:
    """A worker of several queues moves each job into its queue's intermediate list (never pops)."""

    def test_a_job_taken_by_a_worker_of_several_queues_stays_in_a_list_until_it_is_started(self):
        first, second = get_queue("email"), get_queue("fx-refresh")
        job_id = enqueue("fx-refresh", nap, "moved", 0)
        worker = BroxivaWorker([first, second], connection=first.connection)

        job, queue = worker.queue_class.dequeue_any([first, second], None, connection=first.connection)

        # A worker killed right now leaves the job where recovery looks, not in no list at all.
        assert (job.id, queue.name) == (job_id, "fx-refresh")
        assert second.connection.lrange(second.intermediate_queue_key, 0, -1) == [job_id.encode()]
        worker.prepare_job_execution(job)  # registering it as started drops the intermediate entry
        assert second.connection.llen(second.intermediate_queue_key) == 0
        assert second.fetch_job(job_id).get_status() == JobStatus.STARTED

    def test_it_takes_queues_in_priority_order_and_times_out_when_all_are_empty(self):
        first, second = get_queue("email"), get_queue("fx-refresh")
        later = enqueue("fx-refresh", nap, "later", 0)
        sooner = enqueue("email", nap, "sooner", 0)
        moving = BroxivaWorker([first, second], connection=first.connection).queue_class

        assert moving.dequeue_any([first, second], 1, connection=first.connection)[0].id == sooner
        assert moving.dequeue_any([first, second], 1, connection=first.connection)[0].id == later
        with pytest.raises(DequeueTimeout):
            moving.dequeue_any([first, second], 1, connection=first.connection)
        assert moving.dequeue_any([first, second], None, connection=first.connection) is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
class ChaosTests:
    JOBS = 500

    @pytest.fixture(autouse=True)
    def keep_everything(self, settings):
        # Retention would delete finished jobs (keep 100) before they are counted.
        settings.QUEUE_OVERRIDES = {"fx-refresh": {"keep_completed": 1000}}

    def test_two_workers_500_jobs_one_killed_three_times_and_every_job_ends(self):
        overrides = json.dumps(settings.QUEUE_OVERRIDES)
        queue = get_queue("fx-refresh")
        workers, outputs = [], []

        def start(name: str):
            process, output = drained(start_fast_worker("fx-refresh", QUEUE_OVERRIDES=overrides, name=name))
            workers.append(process)
            outputs.append(output)
            return process

        started = time.monotonic()
        survivor = start("chaos-survivor")
        # The survivor holds RQ's scheduler lock, so retries keep moving while the other dies.
        wait_for(lambda: queue.connection.exists("rq:scheduler-lock:fx-refresh"), timeout=30, what="scheduler")
        # Every 20th job naps long enough that a kill aimed at it lands while it still runs (a 50 ms
        # job can end between reading the victim's current job and the SIGKILL on a loaded machine).
        ids = enqueue_many("fx-refresh", nap, [
            {"marker": "chaos", "seconds": 0.5 if n % 20 == 0 else 0.05} for n in range(self.JOBS)
        ])
        bait = {job_id.encode() for n, job_id in enumerate(ids) if n % 20 == 0}
        victim = start("chaos-victim-1")
        log = redis.Redis.from_url(settings.REDIS_URL)
        kills = []
        try:
            for round_ in range(1, 4):
                time.sleep(2)
                # Kill it while it runs a job, so that job is abandoned mid-execution.
                key = f"rq:worker:chaos-victim-{round_}"
                current = wait_for(lambda key=key: (job := queue.connection.hget(key, "current_job")) in bait and job,
                                   timeout=20, interval=0.01, what="the victim to be in a long job")
                # current_job is set before the work horse forks: wait until the job has started
                # (nap records it), or a loaded machine kills the horse before it ran anything.
                wait_for(lambda current=current: log.lpos("ops:runs:chaos", current) is not None,
                         timeout=20, interval=0.005, what="the victim's job to start")
                kill_hard(victim)
                kills.append(current.decode())
                victim = start(f"chaos-victim-{round_ + 1}")

            def all_ended() -> bool:
                with queue.connection.pipeline() as pipe:
                    for job_id in ids:
                        pipe.hget(Job.key_for(job_id), "status")
                    statuses = pipe.execute()
                return sum(s not in (b"finished", b"failed") for s in statuses) == 0

            wait_for(all_ended, timeout=75, interval=0.5, what="every job to finish or fail")
            assert survivor.poll() is None, "the survivor ran throughout"
        finally:
            for process in workers:
                stop(process)
        elapsed = time.monotonic() - started

        with queue.connection.pipeline() as pipe:
            for job_id in ids:
                pipe.hmget(Job.key_for(job_id), ["status", "retries_left"])
            rows = pipe.execute()
        statuses = Counter(row[0].decode() if row[0] else "missing" for row in rows)
        client = redis.Redis.from_url(settings.REDIS_URL)
        run_counts = Counter(job_id.decode() for job_id in client.lrange("ops:runs:chaos", 0, -1))
        done_counts = Counter(job_id.decode() for job_id in client.lrange("ops:done:chaos", 0, -1))
        retried = sorted(job_id for job_id in ids if run_counts[job_id] > 1)
        print(
            f"\nchaos accounting: jobs={self.JOBS} finished={statuses['finished']} failed={statuses['failed']} "
            f"missing={statuses['missing']} other={sum(statuses.values()) - statuses['finished'] - statuses['failed']}"
            f"\n  executions={sum(run_counts.values())} retried_after_kill={len(retried)} kills={len(kills)}"
            f"\n  killed mid-run (job: runs, done)={[(k[:8], run_counts[k], done_counts[k]) for k in kills]}"
            f"\n  elapsed={elapsed:.1f}s"
        )

        assert statuses["missing"] == 0, "no job may vanish"
        assert statuses["finished"] + statuses["failed"] == self.JOBS
        assert all(run_counts[job_id] >= 1 for job_id in ids), "every job ran"
        assert retried, "killing a worker mid-job made at least one job run again"
        for job_id, (state, retries_left) in zip(ids, rows, strict=True):
            if state == b"finished":
                assert done_counts[job_id] >= 1, job_id
            else:  # failed only after all 3 attempts were spent
                assert run_counts[job_id] == 3 and int(retries_left) == 0, job_id


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
class BusyWorkerTests:
    def test_a_worker_busy_in_a_long_job_still_recovers_a_dead_workers_job(self):
        queue = get_queue("fx-refresh")
        dead_job = enqueue("fx-refresh", nap, "orphan", 30, first_only=True)
        victim = start_fast_worker("fx-refresh", scheduler=False)
        wait_for(lambda: runs("orphan") == 1, timeout=30, what="the orphan to start")
        kill_hard(victim)
        # The only worker left is busy for 25 s: only its maintenance during the job can find
        # the orphan (no periodic sweep runs in this test).
        long_job = enqueue("fx-refresh", nap, "long", 25)
        busy = start_fast_worker("fx-refresh", scheduler=False)
        try:
            wait_for(lambda: runs("long") == 1, timeout=30, what="the long job to start")
            wait_for(lambda: status(dead_job) in (JobStatus.SCHEDULED, JobStatus.QUEUED), timeout=15,
                     what="the busy worker to hand the orphan to its retry policy")
            assert status(long_job) == JobStatus.STARTED, "found while the long job was still running"
        finally:
            stop(busy)
        assert queue.fetch_job(dead_job).retries_left == 1

    def test_a_simple_worker_does_not_lose_the_lease_of_a_job_longer_than_the_short_lease(self):
        # With the tests' short settings the forking lease is 1 + 2 s; the job takes 8 s.
        job_id = enqueue("fx-refresh", nap, "inproc", 8)
        simple = start_fast_worker("fx-refresh", scheduler=False,
                                   extra_args=("--worker-class", "broxiva.worker.BroxivaSimpleWorker"))
        watcher = None
        try:
            wait_for(lambda: runs("inproc") == 1, timeout=30, what="the job to start")
            watcher = start_fast_worker("fx-refresh", scheduler=False)  # runs maintenance every 2 s
            wait_for(lambda: status(job_id) == JobStatus.FINISHED, timeout=30, what="the job to finish")
        finally:
            for process in (simple, watcher):
                if process is not None:
                    stop(process)
        assert runs("inproc") == 1
        # Taken for abandoned, it would have been handed to its retry policy while it ran.
        assert get_queue("fx-refresh").fetch_job(job_id).retries_left == 2, "the running job was taken for abandoned"
        assert job_id not in get_queue("fx-refresh").scheduled_job_registry.get_job_ids()
