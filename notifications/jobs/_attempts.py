"""What a notifications job needs to know about its own run: is a retry coming, may it defer?"""

from __future__ import annotations

from rq import get_current_job

from broxiva.ratelimit import can_defer


def is_final_attempt() -> bool:
    """Return True when no retry will follow a failure of the running job.

    RQ's ``retries_left`` is the retries not yet spent: ``BroxivaWorker`` decrements it when the
    attempt fails (``job.retry``), so while the job runs, 0 (or None, a queue without retries)
    means this is the last attempt. Called outside a worker (a shell, a test), nothing will
    retry it either.
    """
    job = get_current_job()
    return job is None or not job.retries_left


def may_defer() -> bool:
    """Return True if a ``DeferJob`` raised now would be honoured (not past ``JOB_MAX_DEFERRALS``)."""
    job = get_current_job()
    return job is None or can_defer(job)
