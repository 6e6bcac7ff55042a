"""Retention by count (the seed's ``removeOnComplete: 100`` / ``removeOnFail: 500``).

Each queue keeps at most its policy's ``keep_completed`` finished and ``keep_failed`` failed
jobs: the newest are kept, older ones are deleted with their data (job hash, results,
dependency sets, execution records). RQ itself only expires them by time (``RQ_RESULT_TTL``,
``RQ_FAILURE_TTL``, which stay as a safety net).

It is enforced three ways, all through the same trim:
- after every job, by the worker that ran it (``BroxivaWorker``), for that job's queue;
- at every registry maintenance of a worker (every ``WORKER_MAINTENANCE_INTERVAL``);
- by the ``retention-sweep`` periodic entry every minute, for every queue.

The trim is one Lua script per registry: count, pop the oldest excess (``ZPOPMIN``) and delete
their keys, atomically. A popped job whose id is live again or still listed by another of the
queue's registries keeps its data (only the entry goes): no registry ever lists a deleted job.
Any number of workers may trim the same queue at once; each sees the others' work, so none
over-deletes and repeating a trim is a no-op. A registry's score is the
job's expiry time (end + TTL), and every job of a queue gets the same TTL, so the lowest scores
are the oldest jobs.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq.executions import ExecutionRegistry
from rq.job import Job
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
)
from rq.results import Result

from broxiva.policies import LIVE_STATUSES
from broxiva.queues import PRIORITY_ORDER, policy, rq_name

logger = logging.getLogger(__name__)

# Deleting is O(jobs): a first trim after a long outage is split into calls of this many jobs
# so it never blocks Redis for long.
TRIM_BATCH = 1000

_LIVE = f"local LIVE = {{{', '.join(f'{status} = true' for status in LIVE_STATUSES)}}}\n"
# A popped entry's job data is deleted only when nothing else still refers to the job:
# - its hash says queued/started/scheduled/deferred: the id is live again (RQ leaves a finished or
#   failed job's id in its registry when a new job is enqueued under the same id). This also
#   covers the queue's waiting and intermediate lists and its started registry without scanning
#   them (LPOS is O(n) in the waiting jobs; the started registry lists "<id>:<execution>"), as a
#   job there has one of these statuses;
# - another registry of the queue (KEYS[2..]: failed or finished, canceled, scheduled, deferred)
#   still lists the id: a job that finished, ran again under the same id and failed is in both
#   registries, and the failed one's data must outlive the stale finished entry. ZSCORE is O(1).
# The entry is dropped either way; the last registry to drop the id deletes the data.
_KEEP = _LIVE + """
local function referenced(job, id)
  if LIVE[redis.call('HGET', job, 'status')] then return true end
  for k = 2, #KEYS do
    if redis.call('ZSCORE', KEYS[k], id) then return true end
  end
  return false
end
"""

_TRIM = _KEEP + """
if ARGV[6] ~= '' then
  -- RQ scores in whole seconds; re-score the job just ended with the exact time so the jobs
  -- of one second are kept or dropped in the order they ended (XX: only if it is in here).
  redis.call('ZADD', KEYS[1], 'XX', ARGV[7], ARGV[6])
end
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return {0, {}} end
if excess > tonumber(ARGV[2]) then excess = tonumber(ARGV[2]) end
local popped = redis.call('ZPOPMIN', KEYS[1], excess)
local ids = {}
for i = 1, #popped, 2 do
  local id = popped[i]
  local job = ARGV[3] .. id
  if not referenced(job, id) then
    ids[#ids + 1] = id
    redis.call('DEL', job, job .. ':dependents', job .. ':dependencies', ARGV[4] .. id, ARGV[5] .. id)
  end
end
return {#popped / 2, ids}
"""

# Same deletion for chosen ids; a job no longer in the registry (requeued, or deleted by
# someone else meanwhile), or still referenced as above, is left alone.
_DELETE = _KEEP + """
local deleted = 0
for i = 1, #ARGV - 3 do
  local id = ARGV[i + 3]
  local job = ARGV[1] .. id
  if redis.call('ZREM', KEYS[1], id) == 1 then
    if not referenced(job, id) then
      redis.call('DEL', job, job .. ':dependents', job .. ':dependencies', ARGV[2] .. id, ARGV[3] .. id)
      deleted = deleted + 1
    end
  end
end
return deleted
"""

STATES = {"finished": FinishedJobRegistry, "failed": FailedJobRegistry}
# The registries besides a trimmed one that may list the same id (plain ids, scored).
_OTHERS = (FinishedJobRegistry, FailedJobRegistry, CanceledJobRegistry, ScheduledJobRegistry, DeferredJobRegistry)
_LIVE_STATUSES = {status.encode() for status in LIVE_STATUSES}


def _prefixes() -> list[str]:
    return [
        Job.redis_job_namespace_prefix,
        Result.get_key(""),
        ExecutionRegistry.key_template.format(""),
    ]


def registry_key(queue_name: str, state: str) -> str:
    """Return the Redis key of a queue's ``finished`` or ``failed`` registry."""
    try:
        registry = STATES[state]
    except KeyError:
        raise ValueError(f"state must be one of {', '.join(STATES)}") from None
    return registry.key_template.format(rq_name(queue_name))


def _keys(queue_name: str, state: str) -> list[str]:
    """KEYS of the trim scripts: the registry trimmed, then the queue's other registries."""
    registry_key(queue_name, state)  # validates state
    return _registry_keys(rq_name(queue_name), state)


@functools.lru_cache(maxsize=256)
def _registry_keys(rq_queue: str, state: str) -> list[str]:
    # Cached: it runs after every job. Callers pass the list to Redis and never change it.
    trimmed = STATES[state].key_template.format(rq_queue)
    return [trimmed, *(key for registry in _OTHERS if (key := registry.key_template.format(rq_queue)) != trimmed)]


def _script(client: Redis, source: str):
    return client.register_script(source)


def trim_registry(client: Redis, queue_name: str, state: str, keep: int) -> list[str]:
    """Drop the oldest entries of a queue's registry beyond ``keep``; return the ids whose data was deleted."""
    script = _script(client, _TRIM)
    keys = _keys(queue_name, state)
    deleted: list[str] = []
    while True:
        popped, batch = script(keys=keys, args=[keep, TRIM_BATCH, *_prefixes(), "", ""], client=client)
        deleted.extend(i.decode() if isinstance(i, bytes) else i for i in batch)
        if popped < TRIM_BATCH:
            return deleted


@dataclass
class TrimReport:
    queue: str
    finished: int = 0
    failed: int = 0


def trim_queue(queue_name: str, client: Redis | None = None) -> TrimReport:
    """Apply a queue's keep_completed/keep_failed; return how many jobs were deleted."""
    from broxiva.health import connection

    client = client or connection()
    p = policy(queue_name)
    report = TrimReport(queue_name)
    report.finished = len(trim_registry(client, queue_name, "finished", p.keep_completed))
    report.failed = len(trim_registry(client, queue_name, "failed", p.keep_failed))
    if report.finished or report.failed:
        logger.info(
            "retention queue=%s deleted finished=%d failed=%d (keep %d/%d)",
            queue_name, report.finished, report.failed, p.keep_completed, p.keep_failed,
        )
    return report


def _expiry(ended: float, ttl: int | None, default: int) -> str:
    ttl = default if ttl is None else ttl
    return "" if ttl < 0 else repr(ended + ttl)  # a job kept forever keeps RQ's +inf


def trim_after_job(client: Redis, queue_name: str, job: Job | None = None, *, ended: float | None = None) -> None:
    """The cheap per-job trim: both registries of one queue in one round trip.

    ``job`` (just ended, at ``ended``) is first re-scored to the exact time in whichever
    registry holds it, so "newest kept" holds to the millisecond rather than to RQ's second.
    """
    from rq.defaults import DEFAULT_FAILURE_TTL, DEFAULT_RESULT_TTL

    p = policy(queue_name)
    ended = time.time() if ended is None else ended
    script = _script(client, _TRIM)
    with client.pipeline(transaction=False) as pipe:
        for state, keep, ttl, default in (
            ("finished", p.keep_completed, getattr(job, "result_ttl", None), DEFAULT_RESULT_TTL),
            ("failed", p.keep_failed, getattr(job, "failure_ttl", None), DEFAULT_FAILURE_TTL),
        ):
            score = _expiry(ended, ttl, default) if job is not None else ""
            rescore = [job.id, score] if score else ["", ""]
            script(keys=_keys(queue_name, state), args=[keep, TRIM_BATCH, *_prefixes(), *rescore],
                   client=pipe)
        pipe.execute()


def trim_all(client: Redis | None = None) -> list[TrimReport]:
    """Trim every queue (the periodic sweep)."""
    return [trim_queue(name, client) for name in PRIORITY_ORDER]


# --- Cleaning by age (manage.py clean_jobs) ---------------------------------------------------


def _age_seconds(now: float, score: float, fields: list[Any], default_ttl: int) -> float | None:
    ended_at, ttl = fields
    if ended_at:
        from rq.utils import utcparse

        return now - utcparse(ended_at.decode() if isinstance(ended_at, bytes) else ended_at).timestamp()
    if score == float("inf"):
        return None
    # No end time recorded (RQ's abandoned-job path): the score is the expiry, end + TTL.
    return now - (score - (int(ttl) if ttl is not None else default_ttl))


def jobs_older_than(queue_name: str, state: str, seconds: float, client: Redis | None = None,
                    *, batch: int = 1000) -> list[str]:
    """Return the ids in a queue's finished/failed registry that ended more than ``seconds`` ago."""
    from django.conf import settings

    from broxiva.health import connection

    client = client or connection()
    key = registry_key(queue_name, state)
    ttl_field, default_ttl = (
        ("result_ttl", settings.RQ_RESULT_TTL) if state == "finished" else ("failure_ttl", settings.RQ_FAILURE_TTL)
    )
    now = time.time()
    old: list[str] = []
    start = 0
    while True:
        entries = client.zrange(key, start, start + batch - 1, withscores=True)
        if not entries:
            return old
        with client.pipeline(transaction=False) as pipe:
            for job_id, _ in entries:
                pipe.hmget(Job.redis_job_namespace_prefix + job_id.decode(), ["ended_at", ttl_field, "status"])
            rows = pipe.execute()
        for (job_id, score), fields in zip(entries, rows, strict=True):
            if fields[2] in _LIVE_STATUSES:  # a stale entry: the id belongs to a live job now
                continue
            age = _age_seconds(now, score, fields[:2], default_ttl)
            if age is not None and age > seconds:
                old.append(job_id.decode())
        start += batch


def delete_jobs(queue_name: str, state: str, job_ids: list[str], client: Redis | None = None,
                *, batch: int = 500) -> int:
    """Delete these jobs (and their data) from a queue's finished/failed registry; return how many."""
    from broxiva.health import connection

    client = client or connection()
    keys = _keys(queue_name, state)
    script = _script(client, _DELETE)
    deleted = 0
    for start in range(0, len(job_ids), batch):
        deleted += int(script(keys=keys, args=[*_prefixes(), *job_ids[start:start + batch]], client=client))
    return deleted
