"""The soak with faults: many mixed jobs through real workers while workers die and Redis fails over.

What runs (docs/testing.md, "The soak"): a Sentinel cluster of its own (``cluster.py``: master,
one replica, three sentinels, all on loopback); ``WORKERS`` simple rqworker processes on every
queue, configured through Sentinel; ``SOAK_JOBS`` jobs of every worker type (``scheduled.py`` has the
exchange-rate, catalogue and sitemap ones) enqueued through the apps' public APIs inside
transactions (so through the outbox) against local servers, some of which fail, are slow
or ask to come back in an hour. Meanwhile a thread SIGKILLs a random worker every
``SOAK_KILL_INTERVAL`` seconds and starts a new one, and once SIGKILLs the Redis master while its
replica lags, so the sentinels promote a replica that lost the last writes. The outbox waits for
replication (``OUTBOX_WAIT_REPLICAS=1``), so whatever the failover loses comes back from
PostgreSQL through the relay.

At the end every job is accounted for from PostgreSQL (and the servers' logs), printed as a
table; nothing is missing, nothing at-most-once arrived twice, no natural key has two rows, and
the queues and the outbox drain within ``SOAK_DRAIN_BOUND`` seconds of the last fault.
"""

from __future__ import annotations

import collections
import email
import email.policy
import json
import logging
import os
import random
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from django.db.models import Count
from redis.exceptions import RedisError

from broxiva import outbox
from broxiva.health import queues_health
from broxiva.models import Tenant
from broxiva.queues import enqueue
from tests.notifications import smtp_server
from tests.notifications.push_servers import Reply, VapidKeys, WebPushService
from tests.notifications.receivers import OK, Receiver
from tests.soak.cluster import SentinelCluster
from tests.soak.scheduled import OVERRIDES as SCHEDULED_OVERRIDES
from tests.soak.scheduled import ScheduledWork
from tests.translations.llm_server import LLMServer, anthropic_error
from tests.workers import output, start_worker, stop, worker_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

# 3,000 in the suite (the same faults and checks in ~3 min); .ci/run runs the 20,000 after it.
SOAK_JOBS = int(os.environ.get("SOAK_JOBS", "3000"))
KILL_INTERVAL = float(os.environ.get("SOAK_KILL_INTERVAL", "20"))
# The faults need jobs flowing: enqueueing is paced over at least this long (it may take longer).
MIN_ENQUEUE_SECONDS = float(os.environ.get("SOAK_MIN_SECONDS", "45"))
FAILOVER_AFTER = float(os.environ.get("SOAK_FAILOVER_AFTER", "10"))
DRAIN_BOUND = float(os.environ.get("SOAK_DRAIN_BOUND", "240"))
WORKERS = 4
DUTY_INTERVAL = 5.0  # the test plays the scheduler's part: outbox relay and webhook dispatch

# Fast retries so "failed after its attempts" happens within the soak, and job timeouts short
# enough that a simple worker's killed job (its lease is the timeout + 60 s) is found quickly.
OVERRIDES = {
    "email": {"backoff_base": 1, "timeout": 20},
    "notification": {"backoff_base": 1, "timeout": 20},
    "webhook-delivery": {"attempts": 2, "backoff_base": 2, "timeout": 40},
    "translation": {"backoff_base": 1, "max_delay": 2, "timeout": 20},
    "domain-verification": {"attempts": 3, "backoff_base": 1, "max_delay": 2, "timeout": 20},
    "maintenance": {"timeout": 20},
    **SCHEDULED_OVERRIDES,
}
DISPATCH = "notifications.jobs.webhooks.webhook_dispatch_job"

# The mix, as shares of SOAK_JOBS (e-mail takes the rest); heavy jobs are a few of each.
WEBHOOK_SHARE, PUSH_SHARE = 0.30, 0.15
TRANSLATIONS = 12
DOMAINS = 12
FX_JOBS, PRODUCT_SYNCS, SITEMAPS = 12, 8, 8


# --- local servers -----------------------------------------------------------------------------


class SoakSmtp(smtp_server.Handler):
    """Scripted by address: ``reject-*`` 550 at RCPT (failed at once), ``busy-*`` 451 at RCPT
    every time (retried, then failed after its attempts), ``flaky-*`` 451 at the first DATA of
    each message (sent on the retry), ``slow-*`` a 1 s wait before accepting."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.flaked: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's name)
        if address.startswith("reject-"):
            return "550 5.1.1 no such user"
        if address.startswith("busy-"):
            return "451 4.2.1 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        import asyncio

        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message_id = message["Message-ID"]
        with self.lock:
            self.data_commands += 1
            flaky = any(r.startswith("flaky-") for r in envelope.rcpt_tos) and message_id not in self.flaked
            if flaky:
                self.flaked.add(message_id)
        if flaky:
            return "451 4.3.0 try again later"
        if any(r.startswith("slow-") for r in envelope.rcpt_tos):
            await asyncio.sleep(1)
        self.received.append(smtp_server.Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 queued"


class SoakSmtpServer(smtp_server.SmtpServer):
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.handler = SoakSmtp()
        self.port = smtp_server._free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()


@dataclass
class Servers:
    smtp: SoakSmtpServer
    push: WebPushService
    llm: LLMServer
    work: ScheduledWork
    hooks: dict[str, Receiver] = field(default_factory=dict)
    zone: object = None

    def close(self) -> None:
        self.smtp.stop()
        self.push.stop()
        self.llm.close()
        self.work.close()
        for receiver in self.hooks.values():
            receiver.close()
        if self.zone is not None:
            self.zone.__exit__(None, None, None)


# --- workers and faults ------------------------------------------------------------------------


class Fleet:
    """The worker processes; any slot whose process is gone gets a new one."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.lock = threading.Lock()
        self.processes = [self._start() for _ in range(WORKERS)]
        self.killed = 0
        self.exited_on_their_own: list[str] = []

    def _start(self):
        return start_worker(env=self.env, extra_args=("--worker-class", "broxiva.worker.BroxivaSimpleWorker"))

    def kill_one(self, rng: random.Random) -> None:
        with self.lock:
            slot = rng.randrange(len(self.processes))
            process = self.processes[slot]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                self.killed += 1
            self.processes[slot] = self._start()

    def revive(self) -> None:
        with self.lock:
            for slot, process in enumerate(self.processes):
                if process.poll() is not None:
                    self.exited_on_their_own.append(output(process)[-2000:])
                    self.processes[slot] = self._start()

    def stop(self) -> None:
        with self.lock:
            for process in self.processes:
                stop(process, timeout=30)


class Faults(threading.Thread):
    """SIGKILL a random worker every KILL_INTERVAL s; fail Redis over once, FAILOVER_AFTER s in."""

    def __init__(self, fleet: Fleet, cluster: SentinelCluster) -> None:
        super().__init__(name="soak-faults", daemon=True)
        self.fleet, self.cluster = fleet, cluster
        self.done = threading.Event()
        self.events: list[str] = []
        self.last_fault = time.monotonic()
        self.failover_report = None
        self.error: BaseException | None = None
        self.rng = random.Random(15)

    def run(self) -> None:
        started = time.monotonic()
        next_kill, failover_at = started + KILL_INTERVAL, started + FAILOVER_AFTER
        try:
            while not self.done.is_set():
                now = time.monotonic()
                if self.failover_report is None and now >= failover_at:
                    self.failover_report = self.cluster.fail_over()
                    self.events.append(f"{now - started:6.1f} s  {self.failover_report}")
                    self.cluster.restore_replica()
                    self.last_fault = time.monotonic()
                    self.events.append(f"{self.last_fault - started:6.1f} s  old master back as the new replica")
                if now >= next_kill:
                    self.fleet.kill_one(self.rng)
                    self.last_fault = time.monotonic()
                    self.events.append(f"{self.last_fault - started:6.1f} s  worker SIGKILLed and replaced")
                    next_kill += KILL_INTERVAL
                self.fleet.revive()
                self.done.wait(0.2)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def finished_enough(self) -> bool:
        return self.failover_report is not None and self.fleet.killed >= 1


# --- the test ----------------------------------------------------------------------------------


def _sentinel_settings(settings, cluster: SentinelCluster) -> dict[str, str]:
    """Point this process at the cluster as broxiva.settings would from the environment; return it."""
    sentinels = [("127.0.0.1", s.port) for s in cluster.sentinels]
    name = cluster.master_name
    cache_db, queue_db = int(os.environ["REDIS_DB"]), int(os.environ["REDIS_QUEUE_DB"])
    settings.REDIS_SENTINELS = sentinels
    settings.REDIS_URL = f"redis://{name}/{cache_db}"
    settings.REDIS_QUEUE_URL = f"redis://{name}/{queue_db}"
    kwargs = {"socket_connect_timeout": 2, "socket_timeout": 2}
    settings.REDIS_SENTINEL_KWARGS = kwargs
    settings.RQ_QUEUES = {
        rq: {"SENTINELS": sentinels, "MASTER_NAME": name, "DB": queue_db, "PASSWORD": None, "SENTINEL_KWARGS": kwargs,
             "CONNECTION_KWARGS": {"socket_timeout": 10}, "DEFAULT_TIMEOUT": c["DEFAULT_TIMEOUT"]}
        for rq, c in settings.RQ_QUEUES.items()
    }
    settings.QUEUE_OVERRIDES = OVERRIDES
    settings.OUTBOX_WAIT_REPLICAS, settings.OUTBOX_WAIT_TIMEOUT_MS = 1, 200
    return {"REDIS_SENTINELS": cluster.sentinel_addresses, "REDIS_SENTINEL_MASTER": name, "REDIS_PORT": "1",
            "QUEUE_OVERRIDES": json.dumps(OVERRIDES), "OUTBOX_WAIT_REPLICAS": "1", "OUTBOX_WAIT_TIMEOUT_MS": "200"}


def _plan(n: int) -> list[str]:
    """The job kinds to enqueue, shuffled: webhooks, pushes, a few heavy jobs, e-mail for the rest."""
    webhooks, pushes = int(n * WEBHOOK_SHARE), int(n * PUSH_SHARE)
    kinds = ["webhook"] * webhooks + ["push"] * pushes + ["translation"] * TRANSLATIONS + ["domain"] * DOMAINS
    kinds += ["fx"] * FX_JOBS + ["product"] * PRODUCT_SYNCS + ["sitemap"] * SITEMAPS
    kinds += ["email"] * max(0, n - len(kinds))
    random.Random(20_000).shuffle(kinds)
    return kinds


# Sub-kinds: (name, weight). The wire side of each is scripted in the servers above.
EMAIL_KINDS = [("ok", 88), ("slow", 1), ("flaky", 5), ("reject", 3), ("busy", 3)]
HOOK_KINDS = [("ok", 85), ("slow", 5), ("failing", 5), ("deferred", 5)]
PUSH_KINDS = [("ok", 85), ("failing", 8), ("deferred", 7)]


def _pick(kinds: list[tuple[str, int]], i: int) -> str:
    total = sum(w for _, w in kinds)
    point = (i * 7919) % total
    for name, weight in kinds:
        if point < weight:
            return name
        point -= weight
    raise AssertionError


def test_soak_with_faults(tmp_path, settings):
    from domains.services import add_domain
    from notifications.models import OutboundEmail, PushDelivery, WebhookAttempt, WebhookDelivery, WebhookEndpoint
    from notifications.services import publish_event, queue_email, queue_push, register_device
    from tests.domains.dns_server import DnsServer
    from translations.services import request_translation

    t0 = time.monotonic()
    RELAYED.clear()
    logging.disable(logging.INFO)  # 20,000 "queued" lines (and aiosmtpd's every command) would drown the table
    cluster = SentinelCluster(tmp_path / "redis", f"soak-{os.environ.get('PYTEST_XDIST_WORKER') or 'serial'}")
    servers = Servers(SoakSmtpServer(), WebPushService(VapidKeys()), LLMServer(delay=0.2), ScheduledWork())
    fleet = faults = None
    try:
        cluster.start()
        env_extra = _sentinel_settings(settings, cluster)
        zone = servers.zone = DnsServer().__enter__()

        acme = Tenant.objects.create(slug="acme", name="Acme Corp", default_locale="en", enabled_locales=["en", "fr"],
                                     contact_email="ops@acme.test")
        scripts = {"ok": [OK], "slow": [OK], "failing": [(500, {}, b"oops")],
                   "deferred": [(429, {"Retry-After": "3600"}, b"later")]}
        for kind, script in scripts.items():
            receiver = servers.hooks[kind] = Receiver(script=script, delay=0.5 if kind == "slow" else 0.0)
            e = WebhookEndpoint.objects.create(tenant=acme, url=receiver.url(f"/{kind}"), event_types=[f"soak.{kind}"])
            receiver.secrets = [e.secret]
        for kind, _ in PUSH_KINDS:
            endpoint, subscriber = servers.push.subscribe(kind)
            register_device(tenant_id=acme.pk, user_ref=f"user-{kind}", platform="webpush", endpoint=endpoint,
                            p256dh=subscriber.p256dh, auth=subscriber.auth)
        servers.push.replies["failing"] = [Reply(502, b"bad gateway")] * 10**6
        servers.push.replies["deferred"] = [Reply(429, b"slow down", {"Retry-After": "3600"})] * 10**6
        servers.llm.script("anthropic", *[anthropic_error(500, "api_error", "boom")] * 2)

        env = worker_env(
            **env_extra, **servers.smtp.settings(),
            WEBPUSH_VAPID_PRIVATE_KEY=servers.push.vapid.private_raw, WEBPUSH_VAPID_SUBJECT="mailto:ops@acme.test",
            OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8", WEBHOOK_TIMEOUT="5", WEBHOOK_CONCURRENCY="32",
            ANTHROPIC_API_KEY="sk-ant-soak-0123456789", ANTHROPIC_BASE_URL=servers.llm.url, ANTHROPIC_RPM="0",
            ANTHROPIC_MODEL="claude-test", OPENAI_API_KEY="", TRANSLATION_PROVIDERS="anthropic",
            TRANSLATION_HTTP_TIMEOUT="5", TRANSLATION_QUALITY_JUDGE="false",
            DNS_NAMESERVERS=zone.address, DNS_TIMEOUT="1", DNS_LIFETIME="3", DOMAIN_CHECK_BATCH="1",
            WORKER_MAINTENANCE_INTERVAL="10", LOG_LEVEL="WARNING",
            BROXIVA_VAR_DIR=str(tmp_path / "var"), **servers.work.env(),
        )
        fleet = Fleet(env)
        faults = Faults(fleet, cluster)

        # --- enqueue while the faults happen ---------------------------------------------------
        plan = _plan(SOAK_JOBS)
        expected: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        email_kind: dict[str, str] = {}
        push_kind: dict[str, str] = {}
        domains_with_record: set[int] = set()
        started = time.monotonic()
        faults.start()
        last_duty = started
        chunk = 25
        for start in range(0, len(plan), chunk):
            with transaction.atomic():
                for i in range(start, min(start + chunk, len(plan))):
                    kind = plan[i]
                    if kind == "email":
                        sub = _pick(EMAIL_KINDS, i)
                        key = f"soak-email-{i}"
                        queue_email(to=f"{sub}-{i}@acme.test", subject=f"Soak {i}", text="x", tenant_id=acme.pk,
                                    key=key)
                        email_kind[key] = sub
                    elif kind == "webhook":
                        sub = _pick(HOOK_KINDS, i)
                        publish_event(tenant_id=acme.pk, event_type=f"soak.{sub}", payload={"i": i},
                                      key=f"soak-hook-{i}")
                    elif kind == "push":
                        sub = _pick(PUSH_KINDS, i)
                        key = f"soak-push-{i}"
                        queue_push(tenant_id=acme.pk, user_ref=f"user-{sub}", title="Soak", body=str(i),
                                   data={"key": key}, key=key)
                        push_kind[key] = sub
                    elif kind == "translation":
                        sub = "ok"
                        request_translation(tenant_id=acme.pk, content_type="product_title", entity_id=f"p-{i}",
                                            field_name="title", source_locale="en", target_locale="fr",
                                            source_text=f"Red cotton shirt {i}")
                    elif kind in ("fx", "product", "sitemap"):
                        sub = servers.work.enqueue(kind, i, acme)
                    else:
                        sub = "verified" if i % 2 else "no record"
                        name = f"shop{i}.soak.test"
                        row = add_domain(tenant_id=acme.pk, domain=name, method="dns_txt")
                        if i % 2:
                            zone.set(f"_broxiva-verification.{name}", "TXT", [f"broxiva-verification={row.token}"])
                            domains_with_record.add(row.pk)
                    expected[kind][sub] += 1
            # Pace: the enqueueing lasts at least MIN_ENQUEUE_SECONDS, so the faults hit a flow.
            due = started + MIN_ENQUEUE_SECONDS * (start + chunk) / len(plan)
            if time.monotonic() < due:
                time.sleep(due - time.monotonic())
            if time.monotonic() - last_duty > DUTY_INTERVAL:
                _duties()
                last_duty = time.monotonic()
            assert faults.error is None, faults.error
        enqueued_in = time.monotonic() - started
        print(f"\n  enqueued {len(plan)} in {enqueued_in:.0f} s: {_outstanding_now(servers.work)}", flush=True)
        while not faults.finished_enough():  # a small SOAK_JOBS still gets its kill and its failover
            assert faults.error is None and faults.is_alive(), faults.error
            _duties()
            time.sleep(DUTY_INTERVAL)
        faults.done.set()
        faults.join(timeout=120)
        assert faults.error is None, faults.error
        last_fault = faults.last_fault

        # --- drain ------------------------------------------------------------------------------
        def state() -> dict[str, int]:
            return _outstanding(OutboundEmail, PushDelivery, WebhookDelivery, servers.work)

        shown = 0.0
        while True:
            left = state()  # before the duties: the dispatch kick they enqueue would count as waiting
            if not any(left.values()):
                break
            if time.monotonic() - shown > 15:
                shown = time.monotonic()
                print(f"  draining, {shown - last_fault:.0f} s after the last fault: {left}", flush=True)
            if time.monotonic() - last_fault > DRAIN_BOUND:
                exits = "".join(f"\n--- a worker that exited on its own:\n{log}"
                                for log in fleet.exited_on_their_own[-2:])
                pytest.fail(f"not drained {DRAIN_BOUND:.0f} s after the last fault: {left}\n{_stuck()}{exits}")
            _duties()
            fleet.revive()
            time.sleep(3)
        drained_in = time.monotonic() - last_fault

        # --- accounting -------------------------------------------------------------------------
        rows, problems, notes = _account(servers, expected, email_kind, push_kind, domains_with_record)
        print(f"\n\nSoak: {SOAK_JOBS} jobs planned, {WORKERS} simple workers, enqueued in {enqueued_in:.0f} s; "
              f"drained {drained_in:.0f} s after the last fault (bound {DRAIN_BOUND:.0f} s); "
              f"wall {time.monotonic() - t0:.0f} s")
        print("Faults:\n  " + "\n  ".join(faults.events))
        print(f"Outbox relay: {RELAYED['pushed again']} jobs pushed again (Redis had lost them or never took them), "
              f"{RELAYED['found in Redis']} found in Redis and confirmed replicated")
        if fleet.exited_on_their_own:
            last_lines = collections.Counter(log.strip().splitlines()[-1][-160:] if log.strip() else "(no output)"
                                             for log in fleet.exited_on_their_own)
            print(f"Workers that exited on their own (restarted): {len(fleet.exited_on_their_own)}; last lines:")
            for line, n in last_lines.most_common(5):
                print(f"  {n} x {line}")
        print(_table(rows))
        for note in notes:
            print(note)
        assert not problems, "\n".join(problems)
        assert all(r["missing"] == 0 for r in rows), _table(rows)
        # No duplicate rows: every natural key once (the constraints say so; the data must agree).
        assert not OutboundEmail.objects.values("key").annotate(n=Count("id")).filter(n__gt=1).exists()
        assert not PushDelivery.objects.values("key", "device").annotate(n=Count("id")).filter(n__gt=1).exists()
        assert not (WebhookDelivery.objects.filter(resend_of=None).values("message", "endpoint")
                    .annotate(n=Count("id")).filter(n__gt=1).exists())
        assert WebhookAttempt.objects.filter(succeeded=True).values("delivery").annotate(n=Count("id")).filter(
            n__gt=1).count() == 0
        assert drained_in < DRAIN_BOUND
    finally:
        logging.disable(logging.NOTSET)
        if faults is not None:
            faults.done.set()
            faults.join(timeout=120)
        if fleet is not None:
            fleet.stop()
        servers.close()
        cluster.stop()


def _outstanding_now(work: ScheduledWork) -> dict[str, int]:
    from notifications.models import OutboundEmail, PushDelivery, WebhookDelivery

    return _outstanding(OutboundEmail, PushDelivery, WebhookDelivery, work)


def _stuck() -> str:
    """What each row still waiting is doing in Redis (for a drain timeout's message)."""
    from broxiva.queues import get_queue
    from notifications.models import OutboundEmail, PushDelivery
    from translations.models import Translation

    lines = []
    rows = [("email", r) for r in OutboundEmail.objects.filter(status="queued")[:10]]
    rows += [("notification", r) for r in PushDelivery.objects.filter(status="queued").exclude(
        last_error__contains="429")[:10]]
    rows += [("translation", r) for r in Translation.objects.filter(status="DRAFT")[:10]]
    for queue, row in rows:
        try:
            job = get_queue(queue).fetch_job(row.job_id)
            if job is None:
                state = "no job in Redis"
            else:
                result = job.latest_result()
                state = (f"job {job.get_status()} retries_left={job.retries_left} meta={job.meta} "
                         f"last result={result.type.name if result else None}: "
                         f"{(result.exc_string or '')[-300:] if result else ''}")
        except RedisError as exc:
            state = f"Redis: {exc}"
        lines.append(f"  {queue} row {row.pk} job {row.job_id}: {state}")
    return "\n".join(lines)


RELAYED = collections.Counter()


def _duties() -> None:
    """What the scheduler's minute entries do, every few seconds: relay the outbox, kick webhook dispatch."""
    try:
        report = outbox.relay(grace_seconds=5)
        RELAYED["pushed again"] += report.pushed
        RELAYED["found in Redis"] += report.already_in_redis
        enqueue("webhook-delivery", DISPATCH)
    except RedisError:
        pass  # mid-failover: the next round


def _outstanding(OutboundEmail, PushDelivery, WebhookDelivery, work: ScheduledWork) -> dict[str, int]:  # noqa: N803
    from domains.models import TenantDomain

    try:
        health = queues_health()
        waiting, active = health["totalWaiting"], health["totalActive"]
    except RedisError:
        waiting = active = -1
    return {
        "redis waiting": waiting,
        "redis active": active,
        "outbox": outbox.backlog()[0],
        "e-mails queued": OutboundEmail.objects.filter(status="queued").count(),
        "pushes queued": PushDelivery.objects.filter(status="queued").exclude(last_error__contains="429").count(),
        "webhooks due": WebhookDelivery.objects.filter(status__in=["pending", "sending"], deferrals=0).count(),
        "translations": _translations()["pending"] if waiting >= 0 else -1,
        "domains": TenantDomain.objects.filter(last_checked_at=None, status="pending").count(),
        "rates, syncs, sitemaps": work.outstanding() if waiting >= 0 else -1,
    }


def _translations() -> collections.Counter:
    """Translation rows by outcome: done, failed (its job failed after its attempts), pending.

    A row whose job failed for good stays a draft for reviewers (translations.md): that is the
    "failed after its attempts" outcome (a provider's two scripted 500s plus a run lost to a kill
    can spend all three attempts), not work left to do.
    """
    from broxiva.queues import get_queue
    from translations.models import Translation

    counts: collections.Counter = collections.Counter()
    queue = get_queue("translation")
    for status, job_id in Translation.objects.values_list("status", "job_id"):
        if status != "DRAFT":
            counts["done" if status == "AUTO_TRANSLATED" else status] += 1
            continue
        job = queue.fetch_job(job_id) if job_id else None
        counts["failed" if job is not None and job.get_status() == "failed" else "pending"] += 1
    return counts


def _account(servers: Servers, expected, email_kind, push_kind, domains_with_record):
    """Return (table rows, problems, notes): each job type from PostgreSQL, checked against the wire."""
    from domains.models import TenantDomain
    from notifications.models import OutboundEmail, PushDelivery, WebhookDelivery
    from translations.models import Translation

    rows, problems, notes = [], [], []

    def row(kind, enqueued, finished, failed, deferred, unknown, missing):
        rows.append({"type": kind, "enqueued": enqueued, "finished": finished, "failed": failed,
                     "deferred": deferred, "unknown": unknown, "missing": missing})
        accounted = finished + failed + deferred + unknown + missing
        if accounted != enqueued:
            problems.append(f"{kind}: {enqueued} enqueued but {accounted} rows")

    # E-mail: at most once. Every Message-ID reached the SMTP server at most once; a row sent arrived.
    emails = list(OutboundEmail.objects.values("key", "status", "message_id", "last_error"))
    seen = collections.Counter(r.message["Message-ID"] for r in servers.smtp.received)
    by = collections.Counter(e["status"] for e in emails)
    by_jobs = sum(1 for e in emails if e["key"] not in email_kind)  # a verified domain's notice
    row("email", sum(expected["email"].values()) + by_jobs, by["sent"], by["failed"], 0, by["sending"], by["queued"])
    notes.append(f"e-mails queued by jobs (verified domains' notices), counted in 'enqueued': {by_jobs}")
    twice = [m for m, n in seen.items() if n > 1]
    if twice:
        problems.append(f"e-mail received more than once: {len(twice)} message ids, e.g. {twice[:3]}")
    for e in emails:
        kind = email_kind.get(e["key"])
        if kind is None:
            continue  # sent by a job (a verified domain's notice), not planned here
        if e["status"] == "sent" and seen[e["message_id"]] != 1:
            problems.append(f"e-mail {e['key']} is sent but reached the server {seen[e['message_id']]} times")
        wanted = {"ok": "sent", "slow": "sent", "flaky": "sent", "reject": "failed", "busy": "failed"}[kind]
        if e["status"] not in (wanted, "sending"):
            problems.append(f"e-mail {e['key']} ({kind}) ended {e['status']}: {e['last_error'][:200]}")
    unknown = [e["key"] for e in emails if e["status"] == "sending"]
    if unknown:
        notes.append(f"e-mail 'unknown' = left 'sending' by a killed worker (docs/notifications.md: never re-sent; "
                     f"the stale-sends sweep fails them): {len(unknown)}, of which reached the server: "
                     f"{sum(1 for e in emails if e['status'] == 'sending' and seen[e['message_id']])}")

    # Webhooks: each delivery's 2xx at most once, except the documented case (an interrupted attempt).
    deliveries = list(WebhookDelivery.objects.select_related("message", "endpoint").prefetch_related("attempt_rows"))
    by = collections.Counter(d.status for d in deliveries)
    deferred = sum(1 for d in deliveries if d.status == "pending" and d.deferrals)
    row("webhook", sum(expected["webhook"].values()), by["succeeded"], by["failed"], deferred, 0,
        len(deliveries) - by["succeeded"] - by["failed"] - deferred)
    ok_receipts = collections.Counter()
    for kind, receiver in servers.hooks.items():
        status = receiver.script[0][0]
        for r in receiver.received:
            if 200 <= status < 300:
                ok_receipts[(r.path, r.headers["webhook-id"])] += 1
            if r.verified_by != receiver.secrets:
                problems.append(f"webhook to /{kind} failed verification: {r.errors}")
    repeats = 0
    for d in deliveries:
        n = ok_receipts[(f"/{d.endpoint.url.rsplit('/', 1)[-1]}", d.message_id)]
        interrupted = any(a.error.startswith("interrupted") for a in d.attempt_rows.all())
        if n > 1:
            repeats += 1
            if not interrupted:
                problems.append(f"webhook {d.message_id} delivered {n} times without an interrupted attempt")
        if d.status == "succeeded" and n == 0:
            problems.append(f"webhook {d.message_id} succeeded but the receiver never got it")
        kind = d.message.event_type.split(".", 1)[1]
        wanted = {"ok": "succeeded", "slow": "succeeded", "failing": "failed", "deferred": "pending"}[kind]
        if d.status != wanted:
            problems.append(f"webhook {d.message_id} ({kind}) ended {d.status}: {d.last_error[:200]}")
    notes.append(f"webhook deliveries received twice after an interrupted attempt (documented at-least-once): "
                 f"{repeats}")

    # Push: at most once per delivery on the wire.
    pushes = list(PushDelivery.objects.values("key", "status", "last_error"))
    by = collections.Counter(p["status"] for p in pushes)
    deferred = sum(1 for p in pushes if p["status"] == "queued" and "429" in p["last_error"])
    row("push", sum(expected["push"].values()), by["sent"], by["failed"], deferred, by["sending"],
        by["queued"] - deferred)
    got = collections.Counter(m.json()["data"]["key"] for m in servers.push.messages
                              if m.path.endswith("/ok") and m.payload is not None)
    for p in pushes:
        kind = push_kind.get(p["key"])
        if got[p["key"]] > 1:
            problems.append(f"push {p['key']} received {got[p['key']]} times")
        wanted = {"ok": "sent", "failing": "failed", "deferred": "queued"}[kind]
        if p["status"] not in (wanted, "sending"):
            problems.append(f"push {p['key']} ({kind}) ended {p['status']}: {p['last_error'][:200]}")

    # Translations and domains: one row each, done or not. A product sync hands the products it
    # stored to translation (products.handoff): those rows are jobs' work too, counted like e-mails.
    by = _translations()
    planned = sum(expected["translation"].values())
    by_jobs = Translation.objects.exclude(entity_id__startswith="p-").count()  # the plan's are "p-<i>"
    row("translation", planned + by_jobs, by["done"], by["failed"], 0, 0, by["pending"])
    notes.append(f"translations requested by product syncs, counted in 'enqueued': {by_jobs}")
    domains = list(TenantDomain.objects.values("pk", "status", "last_checked_at"))
    checked = [d for d in domains if d["last_checked_at"] is not None or d["status"] != "pending"]
    row("domain", sum(expected["domain"].values()), len(checked), 0, 0, 0, len(domains) - len(checked))
    for d in domains:
        wanted = "verified" if d["pk"] in domains_with_record else "pending"
        if d["status"] != wanted:
            problems.append(f"domain {d['pk']} ended {d['status']}, expected {wanted}")
    servers.work.account(row, problems, notes)
    return rows, problems, notes


def _table(rows: list[dict]) -> str:
    columns = ["type", "enqueued", "finished", "failed", "deferred", "unknown", "missing"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    line = "  ".join(c.rjust(widths[c]) if c != "type" else c.ljust(widths[c]) for c in columns)
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(str(r[c]).rjust(widths[c]) if c != "type" else r[c].ljust(widths[c]) for c in columns))
    return "\n".join(out)
