"""The transactional outbox: a job enqueued in a committed transaction reaches Redis, even if Redis
was down at the commit.

Real PostgreSQL; for Redis, the test machine's server, or a throwaway ``redis-server`` on a free
loopback port that a test stops and starts again for real. Real ``rqworker`` processes run the
relayed jobs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from broxiva import outbox
from broxiva.models import OutboxJob, Tenant
from broxiva.queues import enqueue, enqueue_many, get_queue, rq_name
from broxiva.schedules import SCHEDULES
from tests.jobs.sample import greet_job, record
from tests.workers import start_worker, stop, wait_for, worker_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayRedis:
    """A redis-server of this test's own on a free loopback port, stopped and started for real."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                return
            except RedisConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("throwaway redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # as abrupt as a crash: nothing is saved (there is nothing to save)
            self.process.wait()
        self.process = None

    def client(self, db: int) -> redis.Redis:
        return redis.Redis.from_url(self.url(db))


@pytest.fixture
def throwaway_redis(tmp_path, settings):
    """A running throwaway Redis that the queues (and the workers started by the test) use."""
    server = ThrowawayRedis(tmp_path)
    server.start()
    # This process's queue DB number (it differs per xdist process): the workers started with
    # worker_env(REDIS_PORT=...) read REDIS_QUEUE_DB from the environment.
    queue_db = int(os.environ["REDIS_QUEUE_DB"])
    settings.RQ_QUEUES = {name: {**config, "URL": server.url(queue_db)} for name, config in settings.RQ_QUEUES.items()}
    try:
        yield server
    finally:
        server.stop()


def run_burst_worker(server: ThrowawayRedis, *queues: str) -> str:
    """Run a real burst worker against the throwaway Redis until its queues are empty."""
    env = worker_env(REDIS_PORT=str(server.port))
    process = start_worker(*queues, burst=True, scheduler=False, env=env)
    try:
        process.wait(timeout=60)
    finally:
        log = stop(process)
    assert process.returncode == 0, log
    return log


def old_rows(n: int, queue: str = "email", age: int = 120) -> list[OutboxJob]:
    """Outbox rows as a failed commit hook leaves them, recorded ``age`` seconds ago."""
    created = timezone.now() - timedelta(seconds=age)
    return OutboxJob.objects.bulk_create(
        OutboxJob(job_id=outbox.new_job_id(), queue=queue, func="tests.jobs.sample.record", args=[f"m{i}"],
                  created_at=created)
        for i in range(n)
    )


@pytest.mark.django_db(transaction=True)
class RedisDownAtCommitTests:
    def test_it_keeps_the_job_when_redis_is_down_at_commit_and_relays_it_once(self, throwaway_redis):
        throwaway_redis.stop()

        with transaction.atomic():  # neither the commit nor the hook after it may raise
            Tenant.objects.create(slug="acme", name="Acme Corp")
            job_id = enqueue("email", record, "acme welcome")

        assert Tenant.objects.filter(slug="acme").exists()
        row = OutboxJob.objects.get()
        assert (row.job_id, row.queue, row.func, row.args) == (job_id, "email", "tests.jobs.sample.record",
                                                               ["acme welcome"])
        assert row.attempts == 1 and row.last_error.startswith("ConnectionError")

        throwaway_redis.start()
        report = outbox.relay(grace_seconds=0)

        assert (report.pushed, report.failed) == (1, 0)
        assert not OutboxJob.objects.exists()
        assert get_queue("email").job_ids == [job_id]
        run_burst_worker(throwaway_redis, "email")
        assert throwaway_redis.client(int(os.environ["REDIS_DB"])).lrange("test:record", 0, -1) == [b"acme welcome"]
        assert get_queue("email").fetch_job(job_id).get_status() == "finished"
        assert outbox.relay(grace_seconds=0).pushed == 0

    def test_it_keeps_a_whole_batch_when_redis_is_down_at_commit(self, throwaway_redis):
        throwaway_redis.stop()

        with transaction.atomic():
            ids = enqueue_many("email", greet_job, [{"tenant_id": i, "name": f"n{i}"} for i in range(30)])

        assert sorted(OutboxJob.objects.values_list("job_id", flat=True)) == sorted(ids)
        throwaway_redis.start()
        assert outbox.relay(grace_seconds=0).pushed == 30
        assert sorted(get_queue("email").job_ids) == sorted(ids)
        assert get_queue("email").fetch_job(ids[7]).kwargs == {"tenant_id": 7, "name": "n7", "shout": False}

    def test_it_raises_outside_a_transaction_when_redis_is_down(self, throwaway_redis):
        throwaway_redis.stop()

        with pytest.raises(RedisConnectionError):
            enqueue("email", record, "nobody accepted this")

        assert not OutboxJob.objects.exists()

    def test_the_relay_leaves_everything_for_later_while_redis_is_down(self, throwaway_redis):
        old_rows(3)
        throwaway_redis.stop()

        report = outbox.relay()

        assert (report.pushed, report.failed, report.redis_failed) == (0, 3, True)
        assert list(OutboxJob.objects.values_list("attempts", flat=True)) == [1, 1, 1]

    def test_it_deletes_only_what_redis_took_when_redis_fails_midway(self, throwaway_redis, settings):
        # "notification" lives on a Redis that is down: the relay gets through "email", then fails.
        settings.RQ_QUEUES[rq_name("notification")] = {
            **settings.RQ_QUEUES[rq_name("notification")], "URL": f"redis://127.0.0.1:{free_port()}/15"
        }
        old_rows(4, "email")
        waiting = old_rows(3, "notification")
        old_rows(2, "email")

        report = outbox.relay()

        assert (report.pushed, report.failed) == (6, 3)
        assert get_queue("email").count == 6
        assert sorted(OutboxJob.objects.values_list("pk", flat=True)) == sorted(row.pk for row in waiting)
        assert "Connection refused" in OutboxJob.objects.first().last_error


@pytest.mark.django_db(transaction=True)
class CommitHookTests:
    def test_it_pushes_after_commit_and_leaves_no_row(self):
        with transaction.atomic():
            job_id = enqueue("email", record, "a", at_front=True)
            assert OutboxJob.objects.filter(job_id=job_id).exists()
            assert get_queue("email").count == 0

        assert get_queue("email").job_ids == [job_id]
        assert not OutboxJob.objects.exists()

    def test_it_keeps_the_callers_job_id(self):
        with transaction.atomic():
            assert enqueue("email", record, "a", job_id="welcome-acme-1") == "welcome-acme-1"

        assert get_queue("email").job_ids == ["welcome-acme-1"]

    def test_it_records_nothing_when_the_transaction_rolls_back(self):
        class Rollback(Exception):
            pass

        with pytest.raises(Rollback), transaction.atomic():
            enqueue("email", record, "a")
            enqueue_many("email", record, [{"marker": "b"}])
            raise Rollback

        assert not OutboxJob.objects.exists()
        assert get_queue("email").count == 0

    def test_it_writes_a_batch_in_one_insert_and_pushes_it_after_commit(self):
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            ids = enqueue_many("email", greet_job, [{"tenant_id": i, "name": f"n{i}"} for i in range(1200)])

        inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
        assert len(inserts) == 1 and len(ids) == len(set(ids)) == 1200
        assert get_queue("email").job_ids == ids
        assert not OutboxJob.objects.exists()


@pytest.mark.django_db(transaction=True)
class ReplicationTests:
    """OUTBOX_WAIT_REPLICAS: a row is deleted only once replicas acknowledged its push (Redis WAIT)."""

    def test_without_a_replica_the_pushed_jobs_rows_stay_until_replication_is_not_required(self, settings):
        settings.OUTBOX_WAIT_REPLICAS, settings.OUTBOX_WAIT_TIMEOUT_MS = 1, 50  # the suite's Redis has no replica
        with transaction.atomic():
            job_id = enqueue("email", record, "unreplicated")

        assert get_queue("email").job_ids == [job_id]  # the master took it...
        row = OutboxJob.objects.get()  # ...but nothing says a replica did: the row stays
        assert (row.job_id, row.attempts) == (job_id, 1)
        assert row.last_error == "NotReplicated: replication not confirmed: 0 of 1 replica(s) acknowledged within 50 ms"
        report = outbox.relay(grace_seconds=0)
        assert (report.pushed, report.failed, report.redis_failed) == (0, 1, True)
        assert OutboxJob.objects.get().attempts == 2

        settings.OUTBOX_WAIT_REPLICAS = 0
        report = outbox.relay(grace_seconds=0)
        assert (report.pushed, report.already_in_redis, report.failed) == (0, 1, 0)
        assert not OutboxJob.objects.exists()
        assert get_queue("email").job_ids == [job_id]  # pushed once

    def test_with_a_replica_the_rows_are_deleted_once_it_has_the_jobs(self, tmp_path, settings):
        master = ThrowawayRedis(tmp_path / "master")
        replica = ThrowawayRedis(tmp_path / "replica")
        for server in (master, replica):
            server.workdir.mkdir()
        master.start()
        try:
            replica.start()
            replica.client(0).replicaof("127.0.0.1", master.port)
            wait_for(lambda: replica.client(0).info("replication")["master_link_status"] == "up",
                     timeout=30, what="the replica to sync")
            queue_db = int(os.environ["REDIS_QUEUE_DB"])
            settings.RQ_QUEUES = {name: {**c, "URL": master.url(queue_db)} for name, c in settings.RQ_QUEUES.items()}
            settings.OUTBOX_WAIT_REPLICAS, settings.OUTBOX_WAIT_TIMEOUT_MS = 1, 5000
            with transaction.atomic():
                ids = enqueue_many("email", record, [{"marker": f"m{i}"} for i in range(700)])  # two batches

            assert not OutboxJob.objects.exists()
            on_replica = replica.client(queue_db)
            assert all(on_replica.exists(f"rq:job:{job_id}") for job_id in ids)
        finally:
            replica.stop()
            master.stop()


@pytest.mark.django_db
class TestTransactionTests:
    """pytest-django's ``db`` runs each test in a transaction: the hook runs when captured."""

    def test_it_pushes_when_the_captured_commit_hooks_run(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            job_id = enqueue("email", record, "a")
            assert OutboxJob.objects.filter(job_id=job_id).exists()

        assert get_queue("email").job_ids == [job_id]
        assert not OutboxJob.objects.exists()


@pytest.mark.django_db(transaction=True)
class RelayTests:
    def test_it_waits_for_the_grace_period(self, settings):
        settings.OUTBOX_RELAY_GRACE_SECONDS = 60
        OutboxJob.objects.create(job_id="fresh", queue="email", func="tests.jobs.sample.record", args=["f"])
        old_rows(1, age=61)

        assert outbox.relay().pushed == 1
        assert list(OutboxJob.objects.values_list("job_id", flat=True)) == ["fresh"]

    def test_it_does_not_push_again_a_job_already_in_redis(self):
        # The hook pushed, then died before deleting its row.
        pushed = enqueue("email", record, "once")
        (row,) = old_rows(1)
        row.job_id = pushed
        row.save()

        report = outbox.relay()

        assert (report.pushed, report.already_in_redis) == (0, 1)
        assert get_queue("email").job_ids == [pushed]
        assert not OutboxJob.objects.exists()

    def test_it_skips_rows_another_relay_holds(self):
        rows = old_rows(6)
        held = threading.Event()
        release = threading.Event()

        def other_relay() -> None:  # holds the first three rows as a relay does mid-push
            try:
                with transaction.atomic():
                    list(OutboxJob.objects.select_for_update().filter(pk__in=[r.pk for r in rows[:3]]))
                    held.set()
                    release.wait(30)
            finally:
                connection.close()

        thread = threading.Thread(target=other_relay)
        thread.start()
        try:
            assert held.wait(30)
            report = outbox.relay()
        finally:
            release.set()
            thread.join()

        assert report.pushed == 3
        assert sorted(OutboxJob.objects.values_list("pk", flat=True)) == [r.pk for r in rows[:3]]

    def test_two_concurrent_relays_push_each_row_once(self):
        rows = old_rows(3000)
        start = threading.Barrier(2)
        reports: list[outbox.RelayReport] = []

        def relay() -> None:
            try:
                start.wait(30)
                reports.append(outbox.relay())
            finally:
                connection.close()

        threads = [threading.Thread(target=relay) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        job_ids = [job_id.decode() for job_id in get_queue("email").connection.lrange(get_queue("email").key, 0, -1)]
        assert sorted(job_ids) == sorted(row.job_id for row in rows)  # each once, none lost
        assert sum(r.pushed for r in reports) == 3000 and sum(r.already_in_redis for r in reports) == 0
        assert not OutboxJob.objects.exists()

    def test_it_keeps_a_row_whose_queue_no_longer_exists(self):
        old_rows(1, queue="retired-queue")
        old_rows(1)

        report = outbox.relay()

        assert (report.pushed, report.failed, report.redis_failed) == (1, 1, False)
        assert OutboxJob.objects.get().last_error.startswith("UnknownQueue")

    def test_it_stops_at_the_limit(self):
        old_rows(5)

        assert outbox.relay(limit=2).pushed == 2
        assert OutboxJob.objects.count() == 3

    def test_it_is_a_periodic_entry_beside_the_other_sweeps(self):
        entry = next(e for e in SCHEDULES if e.id == "outbox-relay")
        sweeps = next(e for e in SCHEDULES if e.id == "recovery-sweep")

        assert (entry.func, entry.cron, entry.queue) == ("broxiva.jobs.outbox_relay_job", "* * * * *", sweeps.queue)

    def test_the_relay_job_reports_what_it_pushed(self, settings):
        from broxiva.jobs import outbox_relay_job

        settings.OUTBOX_RELAY_GRACE_SECONDS = 0
        old_rows(2)

        assert outbox_relay_job() == {"pushed": 2, "already_in_redis": 0, "failed": 0, "errors": []}


class ErrorTextTests:
    def test_it_never_records_a_redis_password(self):
        error = RedisConnectionError("Error connecting to redis://:hunter2@redis.internal:6379/1")

        assert "hunter2" not in outbox._describe(error)
        assert outbox._describe(error).startswith("ConnectionError: Error connecting to redis://***@redis.internal")


@pytest.mark.django_db(transaction=True)
class CommandTests:
    def test_it_shows_the_backlog_without_pushing_on_a_dry_run(self, capsys):
        old_rows(2)

        call_command("outbox_relay", "--dry-run")

        out = capsys.readouterr().out
        assert "outbox: 2 job(s) waiting, oldest recorded 12" in out and "email: 2" in out
        assert get_queue("email").count == 0 and OutboxJob.objects.count() == 2

    def test_it_pushes_everything_now(self, capsys):
        OutboxJob.objects.create(job_id="fresh", queue="email", func="tests.jobs.sample.record", args=["f"])

        call_command("outbox_relay")

        out = capsys.readouterr().out
        assert "pushed 1, already in Redis 0 (deleted), failed 0" in out and out.rstrip().endswith("outbox: empty")
        assert get_queue("email").job_ids == ["fresh"]

    def test_it_fails_when_redis_is_down(self, throwaway_redis, capsys):
        old_rows(1)
        throwaway_redis.stop()

        with pytest.raises(CommandError, match="1 outbox job"):
            call_command("outbox_relay")
        assert "error: ConnectionError" in capsys.readouterr().out
        assert OutboxJob.objects.count() == 1


@pytest.mark.django_db
class HealthReportTests:
    def test_it_reports_the_outbox_backlog(self, client):
        old_rows(2, age=300)

        report = client.get("/health/queues").json()

        assert report["outbox"]["waiting"] == 2 and 300 <= report["outbox"]["oldestAgeSeconds"] < 400

    def test_it_reports_an_empty_outbox(self, client):
        assert client.get("/health/queues").json()["outbox"] == {
            "waiting": 0, "oldestAgeSeconds": None, "status": "ok", "reasons": []}


@pytest.mark.django_db(transaction=True)
class AdminTests:
    def test_it_lists_waiting_jobs_read_only(self, client):
        (row,) = old_rows(1)
        row.last_error = "ConnectionError: Connection refused"
        row.save()
        client.force_login(User.objects.create_superuser("ops", "ops@broxiva.test", "x"))

        listing = client.get("/admin/broxiva/outboxjob/")
        detail = client.get(f"/admin/broxiva/outboxjob/{row.pk}/change/")

        assert listing.status_code == 200 and row.job_id in listing.text and "Connection refused" in listing.text
        assert detail.status_code == 200 and 'name="_save"' not in detail.text
        assert client.get("/admin/broxiva/outboxjob/add/").status_code == 403
