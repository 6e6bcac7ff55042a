"""What a deploy relies on, with real processes (docs/deploy.md §7): a second ``manage.py
scheduler`` is a standby — both run side by side without firing an entry twice, and when one is
stopped the other fires everything. (How workers stop: tests/broxiva/test_shutdown.py.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

import pytest

from broxiva import schedules
from broxiva.queues import PRIORITY_ORDER, get_queue
from tests.workers import ROOT, wait_for, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def status(job_id: str) -> str | None:
    job = get_queue("fx-refresh").fetch_job(job_id)
    return job.get_status() if job else None


def start_scheduler() -> tuple[subprocess.Popen, object]:
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "scheduler", "--interval", "1"], cwd=ROOT,
                               env=worker_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return process, log


def text(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


def waiting() -> Counter:
    """Waiting jobs per function, over every queue."""
    counts: Counter = Counter()
    for name in PRIORITY_ORDER:
        queue = get_queue(name)
        counts.update(queue.fetch_job(job_id).func_name for job_id in queue.job_ids)
    return counts


def make_every_entry_due() -> None:
    scheduler = schedules.get_scheduler()
    for job in scheduler.get_jobs():
        scheduler.connection.zadd(scheduler.scheduled_jobs_key, {job.id: time.time() - 1})


class StandbySchedulerTests:
    def test_two_schedulers_fire_each_entry_once_and_the_standby_carries_on_alone(self):
        every_entry_once = Counter({entry.func: 1 for entry in schedules.collect()})
        first, first_log = start_scheduler()
        second, second_log = start_scheduler()
        try:
            for log in (first_log, second_log):
                wait_for(lambda log=log: "periodic entries:" in text(log), timeout=60, what="a scheduler to register")
            make_every_entry_due()
            wait_for(lambda: waiting() == every_entry_once, timeout=30, what="every entry to fire once")
            assert first.poll() is None and second.poll() is None, "a scheduler gave up beside the other"

            first.send_signal(signal.SIGTERM)  # a deploy stops the first one
            assert first.wait(timeout=30) == 0, text(first_log)
            for name in PRIORITY_ORDER:
                get_queue(name).empty()  # the runs were taken, so the next fire enqueues again
            make_every_entry_due()
            wait_for(lambda: waiting() == every_entry_once, timeout=30, what="the standby to fire every entry")
        finally:
            for process in (first, second):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=30)
        fired = Counter(line.split("periodic entry ", 1)[1].split()[0]
                        for log in (first_log, second_log) for line in text(log).splitlines()
                        if "periodic entry " in line and " fired job_id=" in line)
        assert fired == Counter({entry.id: 2 for entry in schedules.collect()}), fired
        assert "Shutting down RQ scheduler" in text(first_log)
