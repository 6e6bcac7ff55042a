"""The Dockerfile and compose.yaml run the Procfile's processes, and the web line stops cleanly as PID 1 would.

Docker cannot run here (no daemon, no base images), so these tests read the files the way Docker
and compose do and check them against the Procfile, which stays the one list of processes
(docs/deploy.md). Two run what the image would: its collectstatic build step with only the
image's environment, and the Procfile's web line through ``sh -c``, as the image's CMD and
compose's web command do.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from broxiva.policies import POLICIES
from tests.workers import ROOT, wait_for, worker_env

SHELL_SYNTAX = re.compile(r"&&|\|\||[;|<>`$]")


def procfile() -> dict[str, str]:
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not line.startswith("#"):
            processes[name.strip()] = command.strip()
    return processes


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def as_shell_command(service: dict) -> str:
    """What a compose service runs, as the one shell line it amounts to.

    A string command is split into arguments and run without a shell, so it may hold no shell
    syntax; a list must be ``["sh", "-c", line]``, where compose's ``$$`` is the shell's ``$``.
    """
    command = service["command"]
    if isinstance(command, str):
        assert not SHELL_SYNTAX.search(command), f"{command!r} needs a shell: write it as [sh, -c, …]"
        return shlex.join(shlex.split(command))
    assert command[:2] == ["sh", "-c"] and len(command) == 3, command
    line = command[2]
    assert "$" not in line.replace("$$", ""), f"unescaped $ in {line!r}: compose would expand it"
    return line.replace("$$", "$")


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions in order, as (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def normalised(line: str) -> str:
    return " ".join(line.split())


class ComposeTests:
    def test_every_procfile_process_is_a_service_with_the_same_command(self):
        services = compose()["services"]
        for name, line in procfile().items():
            assert name in services, f"compose.yaml has no {name} service"
            ran = as_shell_command(services[name])
            expected = line if SHELL_SYNTAX.search(line) else shlex.join(shlex.split(line))
            assert normalised(ran) == normalised(expected), name

    def test_the_processes_share_one_image_built_here_and_the_environment_file(self):
        services = compose()["services"]
        for name in procfile():
            assert services[name]["build"] == ".", name
            assert services[name]["env_file"] == ".env", name
            env = services[name]["environment"]
            assert env["REDIS_HOST"] == "redis" and env["DATABASE_URL"].startswith("postgres://"), name
            assert set(services[name]["depends_on"]) == {"postgres", "redis"}, name
            # File sitemaps: written by a worker, served by web, so the processes share var/.
            assert "var:/app/var" in services[name]["volumes"], name

    def test_workers_are_given_the_time_to_finish_or_put_back_their_job(self):
        # SIGKILL before the worker has put its job back would spend an attempt (crash recovery):
        # the stop timeout must exceed the shutdown grace by a margin, whatever the queue timeouts.
        from django.conf import settings

        grace = compose()["services"]["worker"]["stop_grace_period"]
        seconds = re.fullmatch(r"(\d+)s", grace)
        assert seconds, grace
        assert int(seconds[1]) >= settings.WORKER_SHUTDOWN_GRACE + 5
        assert int(seconds[1]) < max(p.timeout for p in POLICIES.values())  # no deploy waits for a sitemap

    def test_redis_keeps_jobs_it_accepted(self):
        args = shlex.split(compose()["services"]["redis"]["command"])
        assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
        assert args[args.index("--appendonly") + 1] == "yes"
        assert args[args.index("--appendfsync") + 1] == "everysec"


class DockerfileTests:
    def test_it_installs_the_pinned_requirements_and_runs_a_procfile_process_as_another_user(self):
        steps = dockerfile()
        assert steps[0] == ("FROM", "python:3.12-slim")
        copy = steps.index(("COPY", "requirements.txt ."))
        install = steps.index(("RUN", "pip install -r requirements.txt"))
        assert copy < install
        users = [args for word, args in steps if word == "USER"]
        assert users and users[-1] not in ("root", "0"), users
        [cmd] = [args for word, args in steps if word in ("CMD", "ENTRYPOINT")]
        assert not cmd.startswith("["), "the web line needs the shell form (&&, ${PORT})"
        assert normalised(cmd) in {normalised(line) for line in procfile().values()}, cmd

    def test_it_collects_static_files_at_build_without_a_database(self):
        runs = [args for word, args in dockerfile() if word == "RUN"]
        assert any("manage.py collectstatic --noinput" in r and "DATABASE_URL" not in r for r in runs), runs

    def test_its_collectstatic_step_runs_with_nothing_but_the_images_environment(self, tmp_path):
        # The step as the build runs it: the Dockerfile's ENV, no DATABASE_URL, no Redis
        # (REDIS_PORT points at a closed port), a fresh var dir. A settings module that needed a
        # database or Redis at import, or a new required variable, would break the image here.
        [step] = [args for word, args in dockerfile() if word == "RUN" and "collectstatic" in args]
        env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path),
               "STATIC_ROOT": str(tmp_path / "static"), "BROXIVA_VAR_DIR": str(tmp_path / "var"),
               "REDIS_PORT": str(free_port())}
        for word, args in dockerfile():
            if word == "ENV":
                env.update(pair.split("=", 1) for pair in shlex.split(args))
        done = subprocess.run(["sh", "-c", step], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        assert (tmp_path / "static" / "admin" / "css" / "base.css").exists()

    def test_local_secrets_and_data_stay_out_of_the_image(self):
        ignored = set((ROOT / ".dockerignore").read_text().split())
        assert {".env", ".git", ".venv", "var"} <= ignored


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_web_line_serves_then_stops_on_sigterm_sent_to_the_shell_pid(tmp_path):
    """A container's stop signal goes to PID 1, the ``sh -c`` running the line: gunicorn must be it."""
    port = free_port()
    env = worker_env(PORT=str(port), WEB_CONCURRENCY="1", STATIC_ROOT=str(tmp_path / "static"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    web = subprocess.Popen(["sh", "-c", procfile()["web"]], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5) as response:
                    return response.status == 200
            except OSError:
                assert web.poll() is None, web.stdout.read().decode(errors="replace")[-3000:]
                return False

        wait_for(healthy, timeout=120, what="the web line to serve /health/")
        cmdline = Path(f"/proc/{web.pid}/cmdline").read_bytes().split(b"\0")
        assert any(b"gunicorn" in part for part in cmdline), f"PID {web.pid} is still the shell: {cmdline}"
        os.kill(web.pid, signal.SIGTERM)  # only this PID, as Docker signals a container's PID 1
        out, _ = web.communicate(timeout=60)
    finally:
        try:  # whatever is left of the group: the shell, or a gunicorn the shell left behind
            os.killpg(web.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        web.wait()
    text = out.decode(errors="replace")
    assert web.returncode == 0, text[-3000:]
    assert "Shutting down: Master" in text
