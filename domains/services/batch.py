"""Several checks in flight per worker process: a job takes sibling jobs still waiting.

A check spends most of its time waiting on DNS or HTTP, and a worker runs one job at a time.
With ``DOMAIN_CHECK_BATCH`` = N > 1, a ``domain_verify_job`` takes up to N-1 other
``domain-verify-<id>`` jobs still waiting in the queue (``LREM`` in one MULTI: a job id removed
by one worker cannot be removed by another, so each is taken once), deletes their job hashes
(the rows are the record) and runs all N checks at once in a thread pool. Only the lookups run
in the threads; the rows are read in one query and written by the job's own thread, so a batch
holds one database connection, not N. The fan-out stays one job id per domain; only who runs it
changes.

- The job's own transient failure raises as usual (the queue's policy retries it).
- A taken job's transient failure is enqueued again under its id after the queue's first retry
  wait; any other error is logged and the row, still due, is enqueued by the next sweep.
- A worker that dies mid-batch loses only Redis entries: the rows are still due, the next sweep
  enqueues them (a deleted hash is not "live").
"""

from __future__ import annotations

import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.utils import timezone
from rq.job import Job

from broxiva.queues import get_queue, job_options, policy
from domains import checks
from domains.errors import DomainsError
from domains.models import TenantDomain
from domains.services.lifecycle import JOB, QUEUE, job_id_for
from domains.services.verify import Outcome, domain_verify, is_due, record_finding

logger = logging.getLogger(__name__)

_ID = re.compile(r"^domain-verify-(\d+)$")
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(size: int) -> ThreadPoolExecutor:
    key = (os.getpid(), size)  # a forked work horse makes its own
    with _pools_lock:
        if key not in _pools:
            _pools.clear()
            _pools[key] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="domains-check")
        return _pools[key]


def take_waiting(n: int, *, exclude: int) -> list[int]:
    """Take up to ``n`` domain-verify jobs off the queue's list; return their domain ids."""
    if n <= 0:
        return []
    queue = get_queue(QUEUE)
    conn = queue.connection
    candidates = [raw.decode() for raw in conn.lrange(queue.key, 0, 2 * n - 1)]
    candidates = [c for c in candidates if _ID.match(c) and c != job_id_for(exclude)][:n]
    if not candidates:
        return []
    with conn.pipeline() as pipe:  # MULTI: each LREM answers 1 to exactly one taker
        for job_id in candidates:
            pipe.lrem(queue.key, 1, job_id)
        removed = pipe.execute()
    taken = [c for c, r in zip(candidates, removed, strict=True) if r]
    if taken:
        conn.delete(*[Job.key_for(c) for c in taken])
    return [int(_ID.match(c).group(1)) for c in taken]  # type: ignore[union-attr]


def _check_all(ids: list[int], size: int) -> dict[int, Outcome | BaseException]:
    rows = {r.pk: r for r in TenantDomain.objects.filter(pk__in=ids)}
    started = timezone.now()
    results: dict[int, Outcome | BaseException] = {}
    futures = {}
    pool = _pool(size)
    for pk in ids:
        row = rows.get(pk)
        if row is None:
            results[pk] = Outcome(pk, "missing")
        elif not is_due(row, started):
            results[pk] = Outcome(pk, "skipped", row.status)
        else:  # network only in the threads: no database connection per thread
            futures[pk] = pool.submit(checks.run, row.method, row.domain, row.token)
    for pk, future in futures.items():
        try:
            results[pk] = record_finding(rows[pk], future.result(), started=started)
        except Exception as exc:
            results[pk] = exc
    return results


def verify_batch(domain_id: int, size: int) -> dict[str, Any]:
    """Check ``domain_id`` and up to ``size - 1`` waiting siblings at once; raise the own failure."""
    siblings = take_waiting(size - 1, exclude=domain_id)
    if not siblings:
        return domain_verify(domain_id=domain_id).as_dict()
    results = _check_all([domain_id, *siblings], size)
    retried = failed = 0
    for sibling in siblings:
        result = results[sibling]
        if isinstance(result, DomainsError) and result.transient:
            _retry_later(sibling)
            retried += 1
        elif isinstance(result, BaseException):
            logger.warning("domain check id=%s failed in a batch: %s; the sweep will enqueue it again", sibling,
                           result.__class__.__name__)
            failed += 1
    own = results[domain_id]
    if isinstance(own, BaseException):
        raise own
    return {**own.as_dict(), "batch": len(results), "siblings_retried": retried, "siblings_failed": failed}


def _retry_later(domain_id: int) -> None:
    waits = policy(QUEUE).retry_delays() or [60]
    options = job_options(QUEUE)
    get_queue(QUEUE).enqueue_in(timedelta(seconds=waits[0]), JOB, kwargs={"domain_id": domain_id},
                                job_id=job_id_for(domain_id), **options)
