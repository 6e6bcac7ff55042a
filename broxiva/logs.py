"""Job context on every log line, and the text/JSON formatters of ``LOGGING``.

While a worker runs a job (``BroxivaWorker.execute_job`` wraps it in ``job_log_context``),
every log record, whichever logger wrote it, carries ``job_id``, ``queue``, ``attempt`` and
``tenant``: the ids an operator needs to find the job in the dashboard and to grep one job's
lines out of many workers' output. ``JobContextFilter`` (on the console handler) copies them
from a context variable onto the record; the formatters print them.

``attempt`` is 1-based and counts executions against the job's retry budget: ``attempts −
retries_left`` of its queue's policy (1 for the first run, 2 for the first retry, …).
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

CONTEXT_FIELDS = ("job_id", "queue", "attempt", "tenant")


@dataclass(frozen=True)
class JobLogContext:
    job_id: str
    queue: str
    attempt: int
    tenant: str | None = None


_current: contextvars.ContextVar[JobLogContext | None] = contextvars.ContextVar("broxiva_job_log", default=None)


def current() -> JobLogContext | None:
    """Return the context of the job running in this process/thread, if any."""
    return _current.get()


def job_attempt(job: Any, queue_name: str | None) -> int:
    """Return the 1-based attempt a job is on, from its retry budget (``retries_left``)."""
    retries_left = getattr(job, "retries_left", None)
    if retries_left is None or queue_name is None:
        return (getattr(job, "number_of_retries", None) or 0) + 1
    from broxiva.queues import EnqueueError, policy

    try:
        attempts = policy(queue_name).attempts
    except EnqueueError:
        return (getattr(job, "number_of_retries", None) or 0) + 1
    return max(1, attempts - int(retries_left))


def _tenant(job: Any) -> str | None:
    try:
        kwargs = job.kwargs or {}
    except Exception:  # an unreadable payload must not stop the job from being logged
        return None
    for name in ("tenant_id", "tenant"):
        value = kwargs.get(name)
        if value is not None and value != "":
            return str(value)
    return None


def context_for(job: Any, queue_name: str | None = None) -> JobLogContext:
    """Build the log context of an RQ job; ``queue_name`` is the logical queue (default: from origin)."""
    if queue_name is None:
        from broxiva.queues import EnqueueError, logical_name

        try:
            queue_name = logical_name(job.origin)
        except EnqueueError:
            queue_name = job.origin
    return JobLogContext(job_id=job.id, queue=queue_name, attempt=job_attempt(job, queue_name), tenant=_tenant(job))


@contextmanager
def job_log_context(job: Any, queue_name: str | None = None) -> Iterator[JobLogContext]:
    """Attach the job's ids to every log record written inside the block."""
    context = context_for(job, queue_name)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


class JobContextFilter(logging.Filter):
    """Set ``job_id``, ``queue``, ``attempt`` and ``tenant`` on every record (None outside a job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        if context is None:
            for name in CONTEXT_FIELDS:
                if not hasattr(record, name):
                    setattr(record, name, None)
            return True
        # Inside a job the context wins over a caller's ``extra`` (RQ passes its own queue name).
        for name, value in asdict(context).items():
            setattr(record, name, value)
        return True


def _context_of(record: logging.LogRecord) -> dict[str, Any]:
    # A handler without the filter still gets the context of the running job.
    context = _current.get()
    fallback = asdict(context) if context is not None else {}
    return {name: getattr(record, name, None) or fallback.get(name) for name in CONTEXT_FIELDS}


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message [job_id=… queue=… attempt=… tenant=…]``."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, **kwargs: Any) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s %(message)s", datefmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _context_of(record)
        if context["job_id"] is None:
            return text
        suffix = " ".join(f"{name}={value}" for name, value in context.items() if value is not None)
        first, sep, rest = text.partition("\n")  # keep a traceback below the line that carries the ids
        return f"{first} [{suffix}]{sep}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the job context, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({name: value for name, value in _context_of(record).items() if value is not None})
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
