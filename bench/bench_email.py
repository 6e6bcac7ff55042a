"""Benchmark: e-mails per second through one worker process to an SMTP server on loopback.

The project path is the real one: ``queue_email`` ×N in one transaction (rows, outbox, one job
each pushed after the commit), then one idle ``manage.py rqworker email`` process sends them (claim
by a conditional UPDATE, one SMTP conversation per e-mail through Django's SMTP backend, the
row marked sent). Timed from the commit to the last ``sent_at``. Baseline, in the same run:
the same messages sent one after the other by Django's ``send_mail`` in this process (no queue,
no database): what one process does with SMTP alone.

The server is aiosmtpd (``tests/notifications/smtp_server.py``) in a thread of this process; it
waits ``--latency`` seconds before answering each DATA, standing in for a relay's round trips.

    REDIS_DB=4 REDIS_QUEUE_DB=5 .venv/bin/python bench/bench_email.py [--emails 300] [--latency 0 0.1]

Writes only the bench database (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/broxiva_bench_email``, created and migrated if missing) and
flushes ``REDIS_QUEUE_DB`` (refusing if it holds jobs when it starts).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402  (after the path is set)

BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/broxiva_bench_email")
os.environ["DATABASE_URL"] = BENCH_DB
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broxiva.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
BODY = "Your order is on its way.\n" * 20


def start_server(latency: float):
    from tests.notifications.smtp_server import Handler, SmtpServer

    class SlowHandler(Handler):
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
            await asyncio.sleep(latency)
            return await super().handle_DATA(server, session, envelope)

    smtp = SmtpServer()
    # aiosmtpd builds each connection's protocol from the controller's handler: swap it before any.
    smtp.handler = smtp.controller.handler = SlowHandler()
    return smtp


def run_worker(worker_class: str, emails: int, smtp) -> float:
    from django.db import transaction
    from django.db.models import Max
    from django.utils import timezone
    from rq import Worker

    from broxiva.queues import get_queue, rq_name
    from notifications.models import OutboundEmail
    from notifications.services import queue_email

    OutboundEmail.objects.all().delete()
    queue = get_queue("email")
    queue.connection.flushdb()
    env = dict(os.environ, PYTHONPATH=str(ROOT), **smtp.settings())
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "rqworker", "--worker-class", worker_class, rq_name("email")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not Worker.all(queue=queue):  # started and idle
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not start")
            time.sleep(0.05)
        with transaction.atomic():
            for n in range(emails):
                queue_email(to=f"customer{n}@shop.test", subject=f"Order {n} shipped", text=BODY)
            started_at = timezone.now()  # the jobs reach Redis when this commits
        while OutboundEmail.objects.filter(status="sent").count() < emails:
            if (timezone.now() - started_at).total_seconds() > 600:
                raise RuntimeError("not all e-mails were sent within 600 s")
            time.sleep(0.1)
        elapsed = (OutboundEmail.objects.aggregate(at=Max("sent_at"))["at"] - started_at).total_seconds()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    if len(smtp.received) < emails:
        raise RuntimeError(f"the server received {len(smtp.received)} of {emails}")
    smtp.received.clear()
    return emails / elapsed


def run_baseline(emails: int, smtp) -> float:
    from django.core.mail import get_connection, send_mail

    settings = smtp.settings()
    backend = get_connection(settings["EMAIL_BACKEND"], host="127.0.0.1", port=smtp.port, timeout=5)
    started = time.perf_counter()
    for n in range(emails):  # one conversation each, as the worker's jobs do
        send_mail(f"Order {n} shipped", BODY, "shop@broxiva.test",
                  [f"customer{n}@shop.test"], connection=backend)
    elapsed = time.perf_counter() - started
    smtp.received.clear()
    return emails / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--emails", type=int, default=300)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.1])
    args = parser.parse_args()

    ensure_database(BENCH_DB)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from broxiva.queues import get_queue

    call_command("migrate", verbosity=0)
    if get_queue("email").connection.dbsize():
        sys.exit(f"REDIS_QUEUE_DB {settings.REDIS_QUEUE_DB} is not empty: use a Redis DB nobody else uses")
    print(f"{args.emails} e-mails per case; {os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'DATA latency':>12} {'baseline send_mail':>19} {'BroxivaWorker':>14} {'BroxivaSimpleWorker':>20}")
    try:
        for latency in args.latency:
            smtp = start_server(latency)
            try:
                base = run_baseline(args.emails, smtp)
                fork = run_worker("broxiva.worker.BroxivaWorker", args.emails, smtp)
                simple = run_worker("broxiva.worker.BroxivaSimpleWorker", args.emails, smtp)
            finally:
                smtp.stop()
            print(f"{latency * 1000:>9.0f} ms {base:>14.1f}/s {fork:>9.1f}/s ({fork / base:.2f}×) "
                  f"{simple:>9.1f}/s ({simple / base:.2f}×)")
    finally:
        get_queue("email").connection.flushdb()
    print(f"load average after: {os.getloadavg()[0]:.1f}; rates are e-mails/s of one process")


if __name__ == "__main__":
    main()
