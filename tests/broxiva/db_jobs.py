"""Job functions and a worker class for the database-connection tests (importable by dotted path)."""

from __future__ import annotations

from typing import Any

from django.db import connection

from broxiva.worker import BroxivaWorker


def backend_pid() -> int:
    """Return the PostgreSQL backend serving this job's database connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


class ParentUsesDbWorker(BroxivaWorker):
    """A forking worker whose parent process holds a database connection when it forks.

    Stands for whatever the parent may do with the database between jobs (an exception handler
    recording a failure, a maintenance step): the work horse must never run on that connection.
    """

    def execute_job(self, job: Any, queue: Any) -> None:
        connection.ensure_connection()
        super().execute_job(job, queue)
