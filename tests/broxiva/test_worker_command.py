"""``manage.py worker`` and the Procfile's worker line, as real processes."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest
from rq import Queue
from rq.job import JobStatus

from broxiva.queues import PRIORITY_ORDER, get_queue
from tests.workers import ROOT, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def procfile_command(process_type: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == process_type:
            argv = shlex.split(command)
            assert argv[:2] == ["python", "manage.py"], argv
            return [sys.executable, str(ROOT / "manage.py"), *argv[2:]]
    raise AssertionError(f"the Procfile has no {process_type} line")


class ProcfileTests:
    def test_its_worker_line_serves_every_queue_under_a_queue_prefix(self):
        client = get_queue("email").connection
        queues = {name: Queue(f"acme-prod:{name}", connection=client) for name in PRIORITY_ORDER}
        jobs = {name: queue.enqueue("tests.jobs.sample.record", name) for name, queue in queues.items()}

        result = subprocess.run([*procfile_command("worker"), "--burst"], cwd=ROOT,
                                env=worker_env(QUEUE_PREFIX="acme-prod"), capture_output=True, text=True,
                                timeout=180)

        assert result.returncode == 0, result.stderr[-3000:]
        for name, job in jobs.items():
            assert job.get_status(refresh=True) == JobStatus.FINISHED, name
        listening = next(line for line in result.stderr.splitlines() if "Listening on" in line)
        assert listening.split("Listening on ", 1)[1].startswith("acme-prod:maintenance, acme-prod:email")
