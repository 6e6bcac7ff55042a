"""Retention by count: keep the newest keep_completed finished / keep_failed failed jobs."""

from __future__ import annotations

import threading

import pytest
from rq import SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from broxiva import jobs
from broxiva.queues import enqueue, enqueue_many, get_queue, policy
from broxiva.retention import delete_jobs, jobs_older_than, registry_key, trim_queue
from broxiva.schedules import SCHEDULES
from broxiva.worker import BroxivaSimpleWorker
from tests.broxiva.ops_helpers import drained, fill_queue
from tests.jobs.sample import always_fails, record
from tests.workers import start_worker, stop


def job_data_keys(connection, job_id: str) -> list[str]:
    """Every key RQ keeps for a job (hash, results, executions, dependency sets)."""
    return [k.decode() for k in connection.keys(f"rq:*{job_id}*")]


def finish(queue_name: str, ids: list[str], registry_class=FinishedJobRegistry, *, first_score: int = 1_000_000):
    """Put jobs in a registry in this order (oldest first), scored as RQ does (expiry time)."""
    queue = get_queue(queue_name)
    status = JobStatus.FINISHED if registry_class is FinishedJobRegistry else JobStatus.FAILED
    with queue.connection.pipeline() as pipe:
        pipe.delete(queue.key)  # they are no longer waiting
        pipe.zadd(registry_class(queue=queue).key, {job_id: first_score + n for n, job_id in enumerate(ids)})
        for job_id in ids:
            pipe.hset(Job.key_for(job_id), "status", status.value)
        pipe.execute()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
class WorkerRetentionTests:
    def test_it_keeps_the_last_100_of_150_finished_jobs_and_deletes_the_others_data(self):
        assert policy("notification").keep_completed == 100
        ids = enqueue_many("notification", record, [{"marker": f"r{n}"} for n in range(150)])
        queue = get_queue("notification")
        worker, output = drained(start_worker("notification", burst=True, scheduler=False))
        try:
            worker.wait(timeout=90)
        finally:
            stop(worker)

        registry = FinishedJobRegistry(queue=queue)
        kept = registry.get_job_ids(cleanup=False)
        assert len(kept) == 100
        assert set(kept) == set(ids[50:]), "the newest 100 are kept"
        for job_id in ids[:50]:
            assert job_data_keys(queue.connection, job_id) == [], job_id
        assert all(Job.exists(job_id, connection=queue.connection) for job_id in ids[50:])
        assert queue.fetch_job(ids[-1]).return_value() == "r149"


class TrimTests:
    def test_it_trims_both_registries_to_the_policy_and_keeps_the_newest(self, settings):
        settings.QUEUE_OVERRIDES = {"email": {"keep_completed": 3, "keep_failed": 2}}
        queue = get_queue("email")
        done, failed = fill_queue("email", 5), fill_queue("email", 4)
        finish("email", done)
        finish("email", failed, FailedJobRegistry)

        report = trim_queue("email")

        assert (report.finished, report.failed) == (2, 2)
        assert FinishedJobRegistry(queue=queue).get_job_ids(cleanup=False) == done[2:]
        assert FailedJobRegistry(queue=queue).get_job_ids(cleanup=False) == failed[2:]
        assert [job_data_keys(queue.connection, i) for i in done[:2] + failed[:2]] == [[]] * 4
        again = trim_queue("email")
        assert (again.finished, again.failed) == (0, 0), "a second trim is a no-op"

    def test_it_never_over_deletes_when_many_workers_trim_at_once(self, settings):
        settings.QUEUE_OVERRIDES = {"translation": {"keep_completed": 100}}
        ids = fill_queue("translation", 400)
        finish("translation", ids)
        barrier = threading.Barrier(8)

        def trim():
            barrier.wait()
            trim_queue("translation")

        threads = [threading.Thread(target=trim) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        kept = FinishedJobRegistry(queue=get_queue("translation")).get_job_ids(cleanup=False)
        assert kept == ids[300:]

    def test_it_never_deletes_a_job_that_is_waiting_again_under_the_same_id(self, settings):
        # RQ leaves a finished job's id in the finished registry when a new job is enqueued under
        # the same id; the registry entry is stale, the job hash belongs to the waiting job.
        settings.QUEUE_OVERRIDES = {"email": {"keep_completed": 1, "keep_failed": 1}}
        queue = get_queue("email")
        enqueue("email", record, "first run", job_id="nightly-digest")
        enqueue("email", record, "newer")
        for job_id in (enqueue("email", always_fails, "f-old", job_id="nightly-report"),
                       enqueue("email", always_fails, "f-newer")):
            queue.connection.hset(Job.key_for(job_id), "retries_left", 0)  # last attempt: straight to failed
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        for registry in (FinishedJobRegistry(queue=queue), FailedJobRegistry(queue=queue)):
            assert registry.count == 2
            # The fixed-id jobs ended first (RQ scores in whole seconds: make that explicit).
            queue.connection.zadd(registry.key, {"nightly-digest": 1, "nightly-report": 1}, xx=True)
        enqueue("email", record, "second run", job_id="nightly-digest")
        enqueue("email", record, "second run", job_id="nightly-report")

        report = trim_queue("email")

        assert (report.finished, report.failed) == (0, 0), "only stale entries went: no job data deleted"
        assert queue.job_ids == ["nightly-digest", "nightly-report"]
        for job_id in ("nightly-digest", "nightly-report"):
            assert queue.fetch_job(job_id).get_status() == JobStatus.QUEUED
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        assert queue.fetch_job("nightly-digest").return_value() == "second run"
        assert queue.fetch_job("nightly-report").return_value() == "second run"

    def test_it_keeps_a_failed_job_whose_earlier_run_under_the_same_id_finished(self, settings):
        # Issue 8, defect 8: "nightly-digest" finished, was enqueued again and failed. Its finished
        # entry is stale but stays; the per-job trim of the finished registry pops it and must not
        # delete the job the failed registry lists.
        settings.QUEUE_OVERRIDES = {"email": {"keep_completed": 1}}
        queue = get_queue("email")
        worker = BroxivaSimpleWorker([queue], connection=queue.connection)
        enqueue("email", record, "first run", job_id="nightly-digest")
        worker.work(burst=True)
        enqueue("email", always_fails, "second run", job_id="nightly-digest")
        queue.connection.hset(Job.key_for("nightly-digest"), "retries_left", 0)  # last attempt: straight to failed
        worker.work(burst=True)
        enqueue("email", record, "newer")

        worker.work(burst=True)  # its trim keeps 1 finished job: "newer"

        assert FinishedJobRegistry(queue=queue).get_job_ids(cleanup=False) != ["nightly-digest"]
        assert FailedJobRegistry(queue=queue).get_job_ids(cleanup=False) == ["nightly-digest"]
        job = queue.fetch_job("nightly-digest")
        assert job is not None, "the failed job's data was deleted"
        assert job.get_status() == JobStatus.FAILED
        assert "boom second run" in job.latest_result().exc_string

    def test_the_last_registry_that_lists_a_job_deletes_its_data(self, settings):
        # The reverse order (failed, then finished under the same id), and no leak: once neither
        # registry lists the job, the trim that drops the last entry deletes the data.
        settings.QUEUE_OVERRIDES = {"email": {"keep_completed": 1, "keep_failed": 1}}
        queue = get_queue("email")
        enqueue("email", always_fails, "first run", job_id="nightly-report")
        queue.connection.hset(Job.key_for("nightly-report"), "retries_left", 0)
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        enqueue("email", record, "second run", job_id="nightly-report")
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        newer_failure = enqueue("email", always_fails, "newer")
        queue.connection.hset(Job.key_for(newer_failure), "retries_left", 0)
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        queue.connection.zadd(registry_key("email", "failed"), {"nightly-report": 1}, xx=True)  # the oldest

        assert trim_queue("email").failed == 0, "the stale failed entry went, the finished job's data stayed"
        assert queue.fetch_job("nightly-report").return_value() == "second run"
        assert FailedJobRegistry(queue=queue).get_job_ids(cleanup=False) == [newer_failure]

        enqueue("email", record, "newest")
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        queue.connection.zadd(registry_key("email", "finished"), {"nightly-report": 1}, xx=True)
        assert trim_queue("email").finished == 1
        assert job_data_keys(queue.connection, "nightly-report") == []

    def test_cleaning_by_age_keeps_a_job_another_registry_lists(self):
        queue = get_queue("email")
        enqueue("email", record, "first run", job_id="nightly-digest")
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        enqueue("email", always_fails, "second run", job_id="nightly-digest")
        queue.connection.hset(Job.key_for("nightly-digest"), "retries_left", 0)
        SimpleWorker([queue], connection=queue.connection).work(burst=True)

        assert delete_jobs("email", "finished", ["nightly-digest"]) == 0
        assert FinishedJobRegistry(queue=queue).get_job_ids(cleanup=False) == []
        assert queue.fetch_job("nightly-digest").get_status() == JobStatus.FAILED

    def test_the_periodic_sweep_trims_every_queue(self, settings):
        settings.QUEUE_OVERRIDES = {"email": {"keep_completed": 1}, "product-sync": {"keep_failed": 1}}
        finish("email", fill_queue("email", 3))
        finish("product-sync", fill_queue("product-sync", 2), FailedJobRegistry)

        assert jobs.retention_sweep_job() == {"email": {"finished": 2, "failed": 0},
                                              "product-sync": {"finished": 0, "failed": 1}}
        entry = next(e for e in SCHEDULES if e.id == "retention-sweep")
        assert (entry.func, entry.cron) == ("broxiva.jobs.retention_sweep_job", "* * * * *")

    def test_it_refuses_an_unknown_state_for_age_queries(self):
        with pytest.raises(ValueError, match="state must be one of finished, failed"):
            jobs_older_than("email", "queued", 10)
