"""What a deploy relies on, with real processes (docs/deploy.md).

- A worker told twice to stop (a second SIGTERM, or a process manager's stop timeout running
  out) kills its job; crash recovery then retries it, spending one attempt.
- SIGTERM sent to every process of the worker (systemd's default ``KillMode=control-group``)
  reaches the job's work horse too and interrupts the job: hence ``KillMode=mixed``.
- A second ``manage.py scheduler`` is a standby: both run side by side without firing an entry
  twice, and when one is stopped the other fires everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

import pytest
from rq.job import JobStatus

from broxiva import schedules
from broxiva.queues import PRIORITY_ORDER, enqueue, get_queue
from tests.broxiva.ops_helpers import _descendants, drained, start_fast_worker
from tests.broxiva.ops_jobs import _client, nap, runs
from tests.workers import ROOT, stop, wait_for, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def status(job_id: str) -> str | None:
    job = get_queue("fx-refresh").fetch_job(job_id)
    return job.get_status() if job else None


class ColdShutdownTests:
    def test_a_second_sigterm_kills_the_job_and_crash_recovery_retries_it(self):
        job_id = enqueue("fx-refresh", nap, "cold", 120, first_only=True)
        # No RQ scheduler in the first worker, so the replacement's takes its lock at once.
        victim, victim_output = drained(start_fast_worker("fx-refresh", scheduler=False))
        wait_for(lambda: runs("cold") == 1, timeout=30, what="the job to start")

        os.kill(victim.pid, signal.SIGTERM)  # warm: finish the job, then exit
        wait_for(lambda: "warm shut down requested" in victim_output.text, timeout=10, what="the warm shutdown")
        time.sleep(1.5)  # RQ ignores a second signal within 1 s of the first (a pool's duplicate)
        os.kill(victim.pid, signal.SIGTERM)  # cold: kill the work horse now
        victim.wait(timeout=30)
        assert "cold shut down" in victim_output.text
        assert status(job_id) == JobStatus.STARTED, "the killed job is left for crash recovery"

        replacement, output = drained(start_fast_worker("fx-refresh"))
        try:
            wait_for(lambda: status(job_id) == JobStatus.FINISHED, timeout=60, what="the job to be retried")
        finally:
            stop(replacement)
        assert runs("cold") == 2
        assert get_queue("fx-refresh").fetch_job(job_id).retries_left == 1, "the killed run spent one of 3 attempts"
        assert f"abandoned job job_id={job_id} queue=fx-refresh" in output.join()


class WholeGroupSigtermTests:
    def test_sigterm_to_the_work_horse_too_interrupts_the_job_which_is_then_retried(self):
        job_id = enqueue("fx-refresh", nap, "group", 120, first_only=True)
        victim, victim_output = drained(start_fast_worker("fx-refresh", scheduler=False))
        wait_for(lambda: runs("group") == 1, timeout=30, what="the job to start")

        for pid in [victim.pid, *_descendants(victim.pid)]:  # what KillMode=control-group does
            os.kill(pid, signal.SIGTERM)
        victim.wait(timeout=30)
        assert _client().llen("ops:done:group") == 0, "the first run finished"

        replacement, _ = drained(start_fast_worker("fx-refresh"))
        try:
            wait_for(lambda: status(job_id) == JobStatus.FINISHED, timeout=60, what="the job to be retried")
        finally:
            stop(replacement)
        assert runs("group") == 2, victim_output.text


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
