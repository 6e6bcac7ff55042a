"""The queue registry and the one way the project enqueues work.

``policy(name)`` answers the §4 contract of DESIGN.md for a queue; ``enqueue()`` checks a job
against it (known queue, importable function, JSON-serialisable arguments, a valid payload for
jobs that declare one) before anything reaches Redis, then hands it to django-rq with the
queue's retry policy, timeout and result TTLs. Enqueueing inside ``transaction.atomic()`` goes
through the transactional outbox (``broxiva.outbox``): the job is recorded in PostgreSQL in the
caller's transaction and pushed to Redis after the commit (by the commit hook, or by the relay
if Redis was unavailable), so a rolled-back transaction enqueues nothing and a committed one
never loses its jobs.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import django_rq
import pydantic
from django.conf import settings
from django.db import connection
from django.utils.module_loading import import_string
from rq import Queue, Retry

from broxiva.policies import POLICIES, PRIORITY_ORDER, QueuePolicy, apply_overrides, rq_queue_name

__all__ = [
    "POLICIES",
    "PRIORITY_ORDER",
    "EnqueueError",
    "InvalidPayload",
    "JobPayload",
    "QueuePolicy",
    "UnknownQueue",
    "enqueue",
    "enqueue_many",
    "get_queue",
    "job_options",
    "logical_name",
    "payload",
    "policy",
    "rq_name",
]

# RQ accepts letters, digits, '_' and '-' only (':' would read as "<job id>:<execution id>").
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class EnqueueError(ValueError):
    """A job was refused before it reached Redis."""


class UnknownQueue(EnqueueError, KeyError):
    def __init__(self, name: object) -> None:
        super().__init__(f"unknown queue {name!r}; known queues: {', '.join(PRIORITY_ORDER)}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class InvalidPayload(EnqueueError):
    """The job's arguments do not satisfy its declared payload."""


def policy(queue_name: str) -> QueuePolicy:
    """Return the policy of a queue (with ``QUEUE_OVERRIDES`` applied), or raise ``UnknownQueue``."""
    try:
        base = POLICIES[queue_name]
    except (KeyError, TypeError):
        raise UnknownQueue(queue_name) from None
    if not settings.QUEUE_OVERRIDES.get(queue_name):
        return base
    return apply_overrides({queue_name: settings.QUEUE_OVERRIDES[queue_name]})[queue_name]


def rq_name(queue_name: str) -> str:
    """Return RQ's name for a logical queue (the name under ``QUEUE_PREFIX``)."""
    policy(queue_name)
    return rq_queue_name(queue_name, settings.QUEUE_PREFIX)


def logical_name(rq_queue: str) -> str:
    """Return the logical queue name for an RQ queue name (the inverse of ``rq_name``)."""
    prefix = f"{settings.QUEUE_PREFIX}:" if settings.QUEUE_PREFIX else ""
    name = rq_queue[len(prefix):] if prefix and rq_queue.startswith(prefix) else rq_queue
    policy(name)
    return name


def get_queue(queue_name: str) -> Queue:
    """Return the django-rq queue for a logical queue name, on this process's connection for it."""
    name = rq_name(queue_name)
    return django_rq.get_queue(name, connection=_connection(name))


# One Redis client per process and connection config. django-rq builds a new client for every
# get_queue() (with Sentinel: three sentinel clients, a new pool and a master lookup), and each
# commit hook asks for a queue: on Sentinel that cost ~17 ms per commit and a fresh connection each
# time (measured in tests/soak). Keyed by pid: a forked work horse must not share its parent's sockets.
_connections: dict[tuple[int, str], Any] = {}


def _connection(rq_queue: str) -> Any:
    from django_rq.connection_utils import get_redis_connection

    config = settings.RQ_QUEUES[rq_queue]
    key = (os.getpid(), repr(sorted(config.items())))
    client = _connections.get(key)
    if client is None:
        if len(_connections) >= 64:  # configs changed under a long-lived process (tests): start afresh
            _connections.clear()
        client = _connections[key] = get_redis_connection(config)
    return client


# --- Typed payloads --------------------------------------------------------------------------


class JobPayload(pydantic.BaseModel):
    """Base for the seed's ``*JobData`` contracts: unknown fields are refused, not ignored."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


P = TypeVar("P", bound=JobPayload)


def payload(model: type[P]) -> Callable[[Callable[[P], Any]], Callable[..., Any]]:
    """Declare a job's payload: ``enqueue`` validates keyword arguments against ``model``.

    The decorated job is called by the worker with the payload's fields as keyword arguments;
    it validates them again (a job edited in Redis by hand gets the same clear error) and
    passes the model instance to the function.
    """

    def decorate(func: Callable[[P], Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def run(**fields: Any) -> Any:
            return func(_validate(model, fields))

        run.payload_model = model  # type: ignore[attr-defined]
        return run

    return decorate


def _validate(model: type[P], fields: Mapping[str, Any]) -> P:
    try:
        return model.model_validate(dict(fields))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(payload)'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidPayload(f"invalid {model.__name__}: {problems}") from None


# --- Enqueueing -------------------------------------------------------------------------------


def _function_path(func: Callable[..., Any] | str) -> tuple[str, Callable[..., Any]]:
    if isinstance(func, str):
        path = func
    else:
        qualname = getattr(func, "__qualname__", "")
        module = getattr(func, "__module__", None)
        if not module or not qualname or "<" in qualname or "." in qualname:
            raise EnqueueError(
                f"{func!r} is not a module-level function; jobs must be importable by dotted path"
            )
        path = f"{module}.{qualname}"
    try:
        target = import_string(path)
    except ImportError:
        raise EnqueueError(f"job function {path!r} cannot be imported") from None
    if not callable(target) or (not isinstance(func, str) and target is not func):
        raise EnqueueError(f"job function {path!r} does not resolve to the function given")
    return path, target


def _check_json(path: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        json.dumps([args, kwargs], allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EnqueueError(
            f"arguments of {path} must be JSON-serialisable (ids and plain values, never model "
            f"instances): {exc}"
        ) from None


def job_options(queue_name: str) -> dict[str, Any]:
    """Return the RQ enqueue options that apply a queue's policy to a job."""
    p = policy(queue_name)
    return {
        "timeout": p.timeout,
        "result_ttl": settings.RQ_RESULT_TTL,
        "failure_ttl": settings.RQ_FAILURE_TTL,
        "retry": Retry(max=p.retries, interval=p.retry_delays()) if p.retries else None,
    }


def _prepare(
    queue_name: str, func: Callable[..., Any] | str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    policy(queue_name)
    path, target = _function_path(func)
    model = getattr(target, "payload_model", None)
    if model is not None:
        if len(args) == 1 and not kwargs and isinstance(args[0], model):
            kwargs = args[0].model_dump(mode="json")
        elif args:
            raise InvalidPayload(f"{path} takes its {model.__name__} as keyword arguments, not positional ones")
        else:
            kwargs = _validate(model, kwargs).model_dump(mode="json")
        args = ()
    _check_json(path, args, kwargs)
    return path, args, kwargs


def _check_job_id(job_id: str | None) -> None:
    if job_id is not None and not (isinstance(job_id, str) and _JOB_ID.match(job_id)):
        raise EnqueueError(f"job_id {job_id!r} must be 1-128 characters of letters, digits, _ and -")


def enqueue(
    queue_name: str,
    func: Callable[..., Any] | str,
    *args: Any,
    job_id: str | None = None,
    at_front: bool = False,
    **kwargs: Any,
) -> str:
    """Enqueue ``func(*args, **kwargs)`` on a queue with that queue's policy; return the job id.

    Inside a transaction the job is recorded in the outbox and pushed when the transaction
    commits (not at all if it rolls back); the id returned is the one it will be pushed with (a
    new uuid4 hex when ``job_id`` is not given). Outside one, a Redis error raises: nothing was
    accepted. Raise ``EnqueueError`` (``UnknownQueue``, ``InvalidPayload``) without touching Redis
    or the database when the job is not valid.
    """
    _check_job_id(job_id)
    path, args, kwargs = _prepare(queue_name, func, args, kwargs)
    if connection.in_atomic_block:
        from broxiva import outbox

        pending = outbox.Pending(queue_name, path, args, kwargs, job_id or outbox.new_job_id(), at_front)
        return outbox.record([pending])[0]
    job = get_queue(queue_name).enqueue_call(
        func=path, args=args, kwargs=kwargs, job_id=job_id, at_front=at_front, **job_options(queue_name)
    )
    return job.id


def enqueue_many(
    queue_name: str,
    func: Callable[..., Any] | str,
    kwargs_list: Iterable[Mapping[str, Any]],
    *,
    batch_size: int = 500,
    job_ids: Sequence[str] | None = None,
) -> list[str]:
    """Enqueue one job per keyword-argument mapping, in pipelined batches (fan-out).

    Every job is validated first: one bad payload refuses the whole batch and nothing is
    enqueued. Inside a transaction, the batch goes through the outbox (one INSERT, one commit
    hook that pushes it in pipelined batches) and the ids it will be pushed with are returned.
    ``job_ids`` (one per job, in order) chooses the ids, for a caller that stores them or puts
    them in the payload before enqueueing; by default each job gets a new uuid4 hex.
    """
    prepared = [_prepare(queue_name, func, (), dict(kw)) for kw in kwargs_list]
    if job_ids is not None:
        job_ids = list(job_ids)
        if len(job_ids) != len(prepared):
            raise EnqueueError(f"{len(job_ids)} job ids for {len(prepared)} jobs")
        for job_id in job_ids:
            _check_job_id(job_id)
    if connection.in_atomic_block:
        from broxiva import outbox

        ids_for = job_ids or [outbox.new_job_id() for _ in prepared]
        return outbox.record(
            [
                outbox.Pending(queue_name, path, args, kwargs, job_id)
                for (path, args, kwargs), job_id in zip(prepared, ids_for, strict=True)
            ]
        )
    options = job_options(queue_name)
    queue = get_queue(queue_name)
    ids: list[str] = []
    for start in range(0, len(prepared), batch_size):
        batch = [
            Queue.prepare_data(
                path, args=args, kwargs=kwargs, job_id=job_ids[start + i] if job_ids else None, **options
            )
            for i, (path, args, kwargs) in enumerate(prepared[start : start + batch_size])
        ]
        with queue.connection.pipeline() as pipe:
            jobs = queue.enqueue_many(batch, pipeline=pipe)
            pipe.execute()
        ids.extend(job.id for job in jobs)
    return ids
