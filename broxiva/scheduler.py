"""rq-scheduler, adapted to the project's periodic entries.

Four changes to rq-scheduler's behaviour, all in ``UTCScheduler``:

- **Cron in UTC.** rq-scheduler computes a cron entry's next run from ``datetime.now()`` (the
  host's local time) and treats that naive result as local time, so ``0 3 * * *`` fires at
  03:00 in the host's ``TZ``. Hosts do not agree on ``TZ``; the contract is UTC.
- **A fresh job per run.** rq-scheduler enqueues the scheduled job itself on every fire, so a
  periodic job needs an infinite result TTL (or it vanishes from the schedule when its result
  expires), its runs share one id (a retry and the next fire collide) and its history cannot
  be kept by count. Here the scheduled job is a *template* that never runs: each fire enqueues
  a new job through ``broxiva.queues.enqueue`` with the queue's policy and finite TTLs.
- **Missed runs coalesce.** While an entry's last run is still waiting (queued, or due to retry),
  a fire enqueues nothing: after a worker outage each entry has one run waiting, not one per
  missed period ahead of real work. A run that has started does not hold the next one back.
- **One schedule per ``QUEUE_PREFIX``.** rq-scheduler keeps its schedule and its lock under
  fixed keys (``rq:scheduler:scheduled_jobs``, ``rq:scheduler_lock``); deployments sharing a
  Redis DB under different prefixes would share one schedule and one active scheduler. With a
  prefix, the keys end in ``:<prefix>`` (and ``broxiva.schedules`` suffixes the template ids);
  without one they are rq-scheduler's own, so an unprefixed deployment keeps its entries.
"""

from __future__ import annotations

import logging
import warnings
from datetime import UTC, datetime, timedelta

from croniter import croniter
from django.conf import settings
from django_rq.queues import DjangoScheduler
from rq.job import Job
from rq_scheduler import Scheduler
from rq_scheduler.utils import to_unix

from broxiva.policies import LIVE_STATUSES

logger = logging.getLogger(__name__)

TEMPLATE_META = "broxiva_schedule"
# The id of the template's last run, which a fire checks before enqueueing another.
LAST_RUN_META = "broxiva_last_run"
# A run in one of these has not started yet: the next fire has nothing to add.
_WAITING = frozenset(status.encode() for status in LIVE_STATUSES if status != "started")


def next_cron_time(cron_string: str, *, after: datetime | None = None) -> datetime:
    """Return the next time (aware, UTC) at which ``cron_string`` fires, read as UTC."""
    base = (after or datetime.now(UTC)).astimezone(UTC)
    return croniter(cron_string, base).get_next(datetime)


class UTCScheduler(DjangoScheduler):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        prefix = settings.QUEUE_PREFIX
        if prefix:
            # Instance attributes shadow rq-scheduler's class-level keys for every method that uses them.
            self.scheduler_key = f"{Scheduler.scheduler_key}:{prefix}"
            self.scheduler_lock_key = f"{Scheduler.scheduler_lock_key}:{prefix}"
            self.scheduled_jobs_key = f"{Scheduler.scheduled_jobs_key}:{prefix}"

    def cron(self, cron_string, func, *args, **kwargs):  # type: ignore[override]
        kwargs["use_local_timezone"] = False
        with warnings.catch_warnings():
            # crontab warns about its local-time default, which is the very thing replaced below.
            warnings.simplefilter("ignore", FutureWarning)
            job = super().cron(cron_string, func, *args, **kwargs)
        self.connection.zadd(self.scheduled_jobs_key, {job.id: to_unix(next_cron_time(cron_string))})
        return job

    def enqueue_job(self, job):  # type: ignore[override]
        schedule_id = job.meta.get(TEMPLATE_META)
        if schedule_id is None:
            cron_string = job.meta.get("cron_string")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                super().enqueue_job(job)
            if cron_string and self.connection.zscore(self.scheduled_jobs_key, job.id) is not None:
                # super() re-armed it in local time; re-arm it in UTC.
                self.connection.zadd(self.scheduled_jobs_key, {job.id: to_unix(next_cron_time(cron_string))})
            return
        self._fire(schedule_id, job)
        self.connection.zadd(self.scheduled_jobs_key, {job.id: to_unix(self._next_run(job))})

    def _next_run(self, job) -> datetime:
        cron_string = job.meta.get("cron_string")
        if cron_string:
            return next_cron_time(cron_string)
        return datetime.now(UTC) + timedelta(seconds=int(job.meta["interval"]))

    def _fire(self, schedule_id: str, job) -> None:
        from broxiva.queues import EnqueueError, enqueue

        last_run = job.meta.get(LAST_RUN_META)
        if last_run and self.connection.hget(Job.key_for(last_run), "status") in _WAITING:
            logger.info("periodic entry %s not fired: its last run job_id=%s has not started yet",
                        schedule_id, last_run)
            return
        try:
            run_id = enqueue(
                job.meta["broxiva_queue"], job.func_name, *job.args,
                at_front=bool(job.meta.get("broxiva_at_front")), **job.kwargs,
            )
        except EnqueueError:
            # A broken entry must not stop the scheduler loop (which serves every other entry).
            logger.exception("periodic entry %s refused its job; fix the entry and re-register", schedule_id)
            return
        job.meta[LAST_RUN_META] = run_id
        job.save_meta()
        logger.info("periodic entry %s fired job_id=%s", schedule_id, run_id)
