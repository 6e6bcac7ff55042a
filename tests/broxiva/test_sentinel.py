"""Redis Sentinel (DESIGN.md §2): settings, the main and queue clients, and a real worker.

A real ``redis-server --sentinel`` on a free loopback port monitors the test machine's Redis
(127.0.0.1:REDIS_PORT, 6379 by default) as ``MASTER``; the test databases stay REDIS_DB / REDIS_QUEUE_DB.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from redis.sentinel import MasterNotFoundError

from tests.broxiva.sentinel_jobs import result_key
from tests.broxiva.test_settings import manage
from tests.workers import ROOT, output, start_worker, stop, worker_env

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
# Sentinels find each other through the master's server-wide __sentinel__:hello channel, per master
# name: one name per pytest process keeps parallel runs' sentinels (docs/testing.md) strangers.
MASTER = f"mymaster-{os.environ.get('PYTEST_XDIST_WORKER') or 'serial'}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def sentinel_port(tmp_path_factory):
    """Start a real sentinel monitoring the suite's Redis (127.0.0.1:REDIS_PORT) as ``MASTER``; yield its port."""
    workdir = tmp_path_factory.mktemp("sentinel")
    port = free_port()
    conf = workdir / "sentinel.conf"  # sentinel rewrites its config file: a private, writable copy
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {workdir}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {settings.REDIS_PORT} 1\n"
    )
    log = (workdir / "sentinel.log").open("wb")
    process = subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if client.sentinel_get_master_addr_by_name(MASTER):
                    break
            except redis.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sentinel did not start: {(workdir / 'sentinel.log').read_text()}")
            time.sleep(0.1)
        yield port
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def sentinel_env(port: int, **extra: str) -> dict[str, str]:
    """A child environment on Sentinel whose plain REDIS_HOST/PORT lead nowhere (port 1)."""
    return worker_env(REDIS_SENTINELS=f"127.0.0.1:{port}", REDIS_SENTINEL_MASTER=MASTER, REDIS_PORT="1",
                      **extra)


class SentinelSettingsTests:
    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"REDIS_SENTINELS": "sentinel-a"}, "REDIS_SENTINELS entry 'sentinel-a' is not host:port"),
            ({"REDIS_SENTINELS": "a:26379,b:port"}, "REDIS_SENTINELS entry 'b:port' is not host:port"),
            ({"REDIS_SENTINELS": "a:70000"}, "REDIS_SENTINELS entry 'a:70000' is not host:port"),
            ({"REDIS_SENTINELS": "a:26379", "REDIS_URL": "redis://x:6379/0"},
             "REDIS_URL cannot be combined with REDIS_SENTINELS"),
            ({"REDIS_SENTINELS": "a:26379", "REDIS_SENTINEL_MASTER": "my/master"}, "REDIS_SENTINEL_MASTER="),
        ],
    )
    def test_it_refuses_bad_values_naming_the_variable(self, tmp_path, env, message):
        result = manage("check", tmp_path=tmp_path, DEBUG="true", **env)
        assert result.returncode != 0
        assert message in result.stderr

    def test_it_builds_django_rq_sentinel_queues_and_a_local_django_cache(self, tmp_path):
        secret = tmp_path / "sentinel-password"
        secret.write_text("s3ntinel\n")
        code = (
            "import json; from django.conf import settings; q = next(iter(settings.RQ_QUEUES.values())); "
            "print(json.dumps({'queue': q, 'cache': settings.CACHES['default']['BACKEND'], "
            "'url': settings.REDIS_URL}))"
        )
        result = manage("shell", "-c", code, tmp_path=tmp_path, DEBUG="true",
                        REDIS_SENTINELS="10.0.0.1:26379, [::1]:26380", REDIS_SENTINEL_MASTER="primary",
                        REDIS_SENTINEL_PASSWORD_FILE=str(secret), REDIS_PASSWORD="m@ster", REDIS_DB="4",
                        REDIS_QUEUE_DB="5", REDIS_SSL="true")
        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout.strip().splitlines()[-1])
        queue = shown["queue"]
        assert queue["SENTINELS"] == [["10.0.0.1", 26379], ["::1", 26380]]
        assert (queue["MASTER_NAME"], queue["DB"], queue["PASSWORD"]) == ("primary", 5, "m@ster")
        assert queue["SENTINEL_KWARGS"]["password"] == "s3ntinel"
        assert queue["CONNECTION_KWARGS"] == {"ssl": True}
        assert "URL" not in queue  # django-rq prefers URL over SENTINELS
        assert shown["cache"] == "django.core.cache.backends.locmem.LocMemCache"
        assert shown["url"] == "rediss://:m%40ster@primary/4"

    def test_without_sentinels_everything_stays_on_the_plain_server(self, tmp_path):
        code = "from django.conf import settings; print(sorted(next(iter(settings.RQ_QUEUES.values()))))"
        result = manage("shell", "-c", code, tmp_path=tmp_path, DEBUG="true")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "['DEFAULT_TIMEOUT', 'URL']"

    def test_the_check_compares_database_numbers_on_the_master(self, tmp_path):
        same = manage("check", tmp_path=tmp_path, DEBUG="true", REDIS_SENTINELS="a:26379",
                      REDIS_DB="3", REDIS_QUEUE_DB="3")
        assert same.returncode != 0 and "broxiva.E001" in same.stderr
        apart = manage("check", tmp_path=tmp_path, DEBUG="true", REDIS_SENTINELS="a:26379",
                       REDIS_DB="3", REDIS_QUEUE_DB="4")
        assert apart.returncode == 0, apart.stderr


class SentinelClientTests:
    @pytest.fixture
    def on_sentinel(self, settings, sentinel_port):
        direct = {"main": redis.Redis.from_url(settings.REDIS_URL),
                  "queue": redis.Redis.from_url(settings.REDIS_QUEUE_URL)}
        settings.REDIS_SENTINELS = [("127.0.0.1", sentinel_port)]
        # MASTER resolves to no address: only the sentinel can say where the master is.
        settings.REDIS_URL = f"redis://{MASTER}/{os.environ['REDIS_DB']}"
        settings.REDIS_QUEUE_URL = f"redis://{MASTER}/{os.environ['REDIS_QUEUE_DB']}"
        yield direct
        for client in direct.values():
            client.close()

    def test_get_redis_and_the_queue_client_reach_the_master_through_the_sentinel(self, on_sentinel):
        from broxiva.connections import get_redis
        from broxiva.health import connection, liveness

        get_redis().set("test:sentinel:main", "m")
        connection().set("test:sentinel:queue", "q")
        assert on_sentinel["main"].get("test:sentinel:main") == b"m"
        assert on_sentinel["queue"].get("test:sentinel:queue") == b"q"
        assert on_sentinel["main"].get("test:sentinel:queue") is None  # each in its own DB
        assert get_redis() is get_redis()  # one client per process
        ok, checks = liveness()
        assert checks["redis"] == "ok" and checks["queueRedis"] == "ok"

    def test_an_unknown_master_name_fails_instead_of_falling_back(self, on_sentinel, settings):
        from broxiva.connections import get_redis

        settings.REDIS_URL = f"redis://othermaster/{os.environ['REDIS_DB']}"
        with pytest.raises(MasterNotFoundError):
            get_redis().ping()


@pytest.mark.django_db(transaction=True)
class SentinelWorkerTests:
    def test_a_job_enqueued_on_sentinel_is_run_by_a_sentinel_worker(self, sentinel_port):
        env = sentinel_env(sentinel_port)
        code = ("from broxiva.queues import enqueue; "
                "print(enqueue('email', 'tests.broxiva.sentinel_jobs.locked_write', 'w1'))")
        enqueued = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", code], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60)
        assert enqueued.returncode == 0, enqueued.stderr
        job_id = enqueued.stdout.strip().splitlines()[-1]
        from broxiva.queues import get_queue

        assert get_queue("email").job_ids == [job_id]  # landed in REDIS_QUEUE_DB on the master

        worker = start_worker("email", burst=True, env=env)  # --with-scheduler: its lock too
        try:
            worker.wait(timeout=60)
        finally:
            log = stop(worker)
        assert worker.returncode == 0 and "Traceback" not in log, log
        outcome = redis.Redis.from_url(settings.REDIS_URL).get(result_key("w1"))
        assert outcome == b"SentinelConnectionPool acquired=True released=True", output(worker)
        assert get_queue("email").fetch_job(job_id).get_status() == "finished"

