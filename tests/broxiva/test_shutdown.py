"""SIGTERM: a worker finishes its job within WORKER_SHUTDOWN_GRACE or puts it back, then exits."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from rq.job import JobStatus

from broxiva.models import Alert
from broxiva.queues import enqueue, get_queue, policy
from tests.broxiva.shutdown_jobs import long_the_first_time, runs, takes
from tests.jobs.sample import record
from tests.workers import output, running_worker, start_worker, stop, wait_for, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SIMPLE = ("--worker-class", "broxiva.worker.BroxivaSimpleWorker")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def wait_exit(process, timeout: float = 60) -> str:
    wait_for(lambda: process.poll() is not None, timeout=timeout, what="the worker to exit")
    return output(process)


def assert_put_back_untouched(job_id: str, behind: str) -> None:
    queue = get_queue("email")
    assert queue.job_ids == [job_id, behind]  # at the front, ahead of the job that was waiting
    job = queue.fetch_job(job_id)
    assert job.get_status() == JobStatus.QUEUED
    assert job.retries_left == policy("email").retries  # no attempt spent
    assert job.meta["shutdown_requeues"] == 1
    assert job_id not in queue.failed_job_registry and job_id not in queue.started_job_registry
    assert not Alert.objects.filter(source="shutdown-test").exists()  # its transaction rolled back


def busy_worker(marker: str, worker_class: tuple[str, ...], *, grace: str):
    """A worker running a long job, and a second job waiting behind it: (job id, worker, behind)."""
    job_id = enqueue("email", long_the_first_time, marker)
    worker = start_worker("email", scheduler=False, extra_args=worker_class,
                          env=worker_env(WORKER_SHUTDOWN_GRACE=grace))
    wait_for(lambda: runs(marker), timeout=30, what="the job to start")
    return job_id, worker, enqueue("email", record, "behind")


@pytest.mark.parametrize("worker_class", [(), SIMPLE], ids=["forking", "simple"])
def test_a_job_still_running_after_the_grace_is_put_back_and_runs_again_elsewhere(worker_class):
    job_id, worker, behind = busy_worker("grace", worker_class, grace="1")

    os.kill(worker.pid, signal.SIGTERM)  # as Docker or Kubernetes send it: to the worker only
    log = wait_exit(worker)

    assert worker.returncode == 0, log
    assert runs("grace") == ["started", "unwound"]  # interrupted, finally ran, no broad except swallowed it
    assert "put back at the front" in log
    assert_put_back_untouched(job_id, behind)

    with running_worker("email", burst=True, scheduler=False) as other:
        other.wait(timeout=60)
    assert get_queue("email").fetch_job(job_id).get_status() == JobStatus.FINISHED
    assert runs("grace") == ["started", "unwound", "started", "done", "unwound"]


@pytest.mark.parametrize("worker_class", [(), SIMPLE], ids=["forking", "simple"])
def test_a_second_sigterm_puts_the_job_back_at_once_when_the_grace_is_unlimited(worker_class):
    job_id, worker, behind = busy_worker("second", worker_class, grace="0")

    os.kill(worker.pid, signal.SIGTERM)
    wait_for(lambda: "warm shut down requested" in output(worker), timeout=10, what="the warm shutdown")
    assert worker.poll() is None  # grace 0: it would wait for the job however long it takes
    time.sleep(1.2)  # RQ ignores a second signal within a second of the first
    os.kill(worker.pid, signal.SIGTERM)
    log = wait_exit(worker)

    assert worker.returncode == 0, log
    assert runs("second") == ["started", "unwound"]
    assert_put_back_untouched(job_id, behind)


def test_the_work_horse_ignores_a_sigterm_sent_to_every_process_of_the_service():
    # systemd's default KillMode=control-group signals the worker and its horse alike.
    job_id = enqueue("email", long_the_first_time, "cgroup")
    worker = start_worker("email", scheduler=False, env=worker_env(WORKER_SHUTDOWN_GRACE="2"))
    wait_for(lambda: runs("cgroup") and children(worker.pid), timeout=30, what="the horse to run the job")
    behind = enqueue("email", record, "behind")

    for pid in [worker.pid, *children(worker.pid)]:
        os.kill(pid, signal.SIGTERM)
    log = wait_exit(worker)

    assert "terminated unexpectedly" not in log, log
    assert runs("cgroup") == ["started", "unwound"]
    assert_put_back_untouched(job_id, behind)


def test_a_job_that_finishes_within_the_grace_is_not_disturbed():
    job_id = enqueue("email", takes, "quick", 3)
    worker = start_worker("email", scheduler=False, env=worker_env(WORKER_SHUTDOWN_GRACE="30"))
    wait_for(lambda: runs("quick"), timeout=30, what="the job to start")
    log = stop(worker, timeout=60)  # SIGTERM while the job sleeps

    assert worker.returncode == 0, log
    assert "has 30s to finish" in log  # the shutdown did land while the job ran
    assert runs("quick") == ["started", "done"]
    job = get_queue("email").fetch_job(job_id)
    assert job.get_status() == JobStatus.FINISHED, log
    assert "shutdown_requeues" not in job.meta
    assert "put back at the front" not in log
