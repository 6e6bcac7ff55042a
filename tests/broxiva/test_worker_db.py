"""Workers recover a dropped PostgreSQL connection: a terminated backend fails no later job.

Real ``rqworker`` processes of each class; the backend serving a job is terminated for real with
``pg_terminate_backend`` (as a PostgreSQL restart, failover or idle timeout would), then more
database jobs run on the same worker and must all succeed.
"""

from __future__ import annotations

import pytest
from django.db import connection

from broxiva.models import Tenant
from broxiva.queues import enqueue, get_queue
from broxiva.worker import BroxivaSimpleWorker
from tests.broxiva.db_jobs import backend_pid
from tests.workers import running_worker, wait_for

WORKER_CLASSES = {
    "simple": "broxiva.worker.BroxivaSimpleWorker",
    "forking": "broxiva.worker.BroxivaWorker",
    "forking-parent-with-connection": "tests.broxiva.db_jobs.ParentUsesDbWorker",
}


def run_to_end(job_id: str):
    """Wait for the job's first attempt to end ("scheduled": it failed and waits for its retry)."""
    queue = get_queue("email")
    return wait_for(
        lambda: (job := queue.fetch_job(job_id)) and job.get_status() in ("finished", "failed", "scheduled") and job,
        timeout=60, what=f"job {job_id} to end",
    )


def terminate_backend(pid: int) -> bool:
    """Terminate a backend; False if it had already ended (a work horse's ends with the horse)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        return cursor.fetchone()[0]


def outcome(job) -> str:
    result = job.latest_result()  # None for a failure waiting for its retry
    error = (result.exc_string if result else None) or ""
    return f"{job.get_status().value}: {error.strip().splitlines()[-1] if error.strip() else ''}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("worker_class", list(WORKER_CLASSES.values()), ids=list(WORKER_CLASSES))
def test_it_runs_database_jobs_after_the_backend_is_terminated(worker_class):
    with running_worker("email", scheduler=False, extra_args=("--worker-class", worker_class)):
        first = run_to_end(enqueue("email", backend_pid))
        assert first.get_status() == "finished", outcome(first)
        terminate_backend(first.return_value())

        later = [run_to_end(enqueue("email", backend_pid)) for _ in range(3)]

    failures = [outcome(job) for job in later if job.get_status() != "finished"]
    assert failures == []
    assert first.return_value() not in {job.return_value() for job in later}


@pytest.mark.django_db
def test_it_leaves_a_transaction_alone_when_run_in_process(acme):
    # pytest-django's transaction holds the connection: closing "stale" connections around the job
    # must not close it (Django's close_old_connections() would: autocommit is off inside it).
    queue = get_queue("email")
    job = queue.original_enqueue_call("tests.broxiva.db_jobs.backend_pid")
    worker = BroxivaSimpleWorker([queue], connection=queue.connection)

    worker.work(burst=True)

    assert job.get_status(refresh=True) == "finished"
    assert Tenant.objects.filter(slug="acme").exists()
