"""The project's RQ worker class (``RQ["WORKER_CLASS"]``, used by ``manage.py rqworker``).

RQ's own worker already does what production needs on SIGTERM: a warm shutdown that lets the
current job finish, then exits. This subclass is where the project adds its job-wide
behaviour, so every ``rqworker`` process on every machine gets it without extra flags.
"""

from __future__ import annotations

from typing import Any

from rq import Worker

# Handlers run, in order, when a job raises; each may return False to stop the chain.
DEFAULT_EXCEPTION_HANDLERS: list[Any] = []


class BroxivaWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        extra = list(kwargs.pop("exception_handlers", None) or [])
        kwargs["exception_handlers"] = [*DEFAULT_EXCEPTION_HANDLERS, *extra]
        super().__init__(*args, **kwargs)
