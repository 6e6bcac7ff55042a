"""The README's quick start, as a new user runs it from a clean clone."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.workers import wait_for

ROOT = Path(__file__).resolve().parent.parent
# What tests/settings.py puts in the environment for the suite; a new user has none of it.
SUITE_ONLY = ("DATABASE_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "EMAIL_BACKEND", "STATIC_MANIFEST",
              "DJANGO_SETTINGS_MODULE", "BROXIVA_VENV", "VIRTUAL_ENV", "BROXIVA_VAR_DIR", "BROXIVA_TEST_VAR_OWNER")


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:sh|bash|shell)\n(.*?)```", section, re.S)
    assert block, "the quick start has no shell block"
    return [line.split(" #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuickStartTests:
    def test_it_gives_exactly_two_commands_and_ci_runs_the_second_as_written(self):
        commands = quick_start_commands()
        assert len(commands) == 2, commands
        ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
        assert commands[1] in ci_lines

    @pytest.mark.slow
    @pytest.mark.parametrize("redis", ["running", "absent"])
    def test_it_runs_web_worker_and_scheduler_from_a_clean_clone_until_ctrl_c(self, tmp_path, redis):
        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in SUITE_ONLY and not k.startswith("PYTEST")}
        env.update(PORT=str(port))  # REDIS_DB / REDIS_QUEUE_DB stay on the suite's databases
        if redis == "absent":
            # Nothing answers on this port: the run command must start a Redis of its own there
            # (and stop it on Ctrl-C with the rest).
            env.update(REDIS_PORT=str(free_port()))
        log = (tmp_path / "run.log").open("wb")
        # shell=True on purpose: the command is run exactly as the README spells it.
        process = subprocess.Popen(  # noqa: S602
            quick_start_commands()[0], shell=True, cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            def login_page() -> bool:
                if process.poll() is not None:
                    raise AssertionError("the run command exited:\n" + (tmp_path / "run.log").read_text()[-3000:])
                try:
                    return requests.get(f"http://127.0.0.1:{port}/admin/login/", timeout=2).status_code == 200
                except requests.ConnectionError:
                    return False

            wait_for(login_page, timeout=300, interval=1, what="the admin login page")
            # The dashboard is staff-only: an anonymous visitor is sent to the admin login.
            dashboard = requests.get(f"http://127.0.0.1:{port}/django-rq/", timeout=5, allow_redirects=False)
            assert dashboard.status_code == 302 and "/admin/login/" in dashboard.headers["Location"]
            output = (tmp_path / "run.log").read_text()
            assert re.search(r"admin login: admin / \S+", output)
            wait_for(lambda: "Listening on maintenance, email" in (tmp_path / "run.log").read_text(), timeout=60,
                     what="the worker to listen")
            # The scheduler starts alongside the worker, not before it: wait for it too.
            wait_for(lambda: "periodic entries:" in (tmp_path / "run.log").read_text(), timeout=60,
                     what="the scheduler to register the periodic entries")
            started_redis = "starting a local one" in (tmp_path / "run.log").read_text()
            assert started_redis == (redis == "absent")
        finally:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground group
            try:
                process.wait(timeout=60)
            finally:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    try:
                        os.killpg(process.pid, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.5)
                else:
                    os.killpg(process.pid, signal.SIGKILL)
                    pytest.fail("Ctrl-C left processes of the run command behind")


class OneRunAtATimeTests:
    """bin/test refuses to share a Redis server or a test database with a run already using it."""

    @staticmethod
    def hold(tmp_path: Path, what: str):
        """Take bin/test's lock on ``what`` as a running bin/test holds it."""
        name = hashlib.sha256(what.encode()).hexdigest()[:16]
        handle = (tmp_path / f"broxiva-test-{name}.lock").open("w")
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return handle

    @staticmethod
    def run_tests(tmp_path: Path, port: int, database: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_HOST",) and not k.startswith("PYTEST")}
        env.update(TMPDIR=str(tmp_path), REDIS_PORT=str(port), TEST_DATABASE_URL=database, BROXIVA_VENV=sys.prefix)
        # Arguments that keep a run the lock failed to stop short: collect one small file.
        command = [str(ROOT / "bin" / "test"), "-p", "no:xdist", "--collect-only", "-q", "tests/test_bench_imports.py"]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)

    @pytest.mark.parametrize("held", ["redis", "database"])
    def test_a_second_run_on_the_same_redis_or_database_stops_before_touching_either(self, tmp_path, held):
        port = free_port()  # nothing listens: a run that went on would start a Redis here
        database = "postgres://postgres:pw-not-shown-0123@127.0.0.1:5432/broxiva_lock_probe"
        what = {"redis": f"Redis 127.0.0.1:{port}",
                "database": "the test databases of 127.0.0.1:5432/broxiva_lock_probe"}
        with self.hold(tmp_path, what[held]):
            done = self.run_tests(tmp_path, port, database)

        assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
        assert f"another bin/test run is using {what[held]}" in done.stderr
        assert "pw-not-shown-0123" not in done.stderr + done.stdout
        assert "==> ruff" not in done.stdout and "==> pytest" not in done.stdout
        with socket.socket() as probe:  # no Redis was started on the port
            assert probe.connect_ex(("127.0.0.1", port)) != 0
