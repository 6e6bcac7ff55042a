"""Benchmark: webhook deliveries per second to a receiver that answers after 100 ms, and worker RSS.

Both paths do the same work per delivery: claim the row by a conditional UPDATE, sign with
``standardwebhooks``, POST through ``broxiva.http`` (destination guard on, loopback allowed),
record an attempt row and the delivery's new state. They differ in how work reaches a process:

- **project**: ``publish_event`` ×N in one transaction → one dispatch job
  (``notifications.jobs.webhooks.webhook_dispatch_job``) that keeps ``WEBHOOK_CONCURRENCY``
  sends in flight, claiming due rows and recording in bulk; run by one ``manage.py rqworker``
  process of the given classes (forking ``BroxivaWorker``, the default, and ``BroxivaSimpleWorker``).
- **baseline**: one RQ job per delivery (``bench.jobs.webhook_deliver_one``) on a plain forking
  ``rq.Worker``: one send at a time.

Timing runs from the commit of the events to the last delivery recorded, with the worker
already started and idle (start-up is not counted). Peak RSS is sampled every 20 ms from
``/proc/<pid>/status`` (VmRSS) and summed over the worker and its children (the forked work
horse). The receiver runs in its own process (asyncio, one 100 ms sleep per request).

    REDIS_DB=4 REDIS_QUEUE_DB=5 DEBUG=1 .venv/bin/python bench/bench_notifications.py \\
        [--deliveries 1000] [--baseline-deliveries 1000] [--rounds 1]

Writes only the bench database (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/broxiva_bench_notifications``, created and migrated if
missing) and flushes ``REDIS_QUEUE_DB`` (refusing if it holds jobs when it starts).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402  (after the path is set)

BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/broxiva_bench_notifications")
os.environ["DATABASE_URL"] = BENCH_DB
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broxiva.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["OUTBOUND_ALLOWED_NETWORKS"] = "127.0.0.0/8"
os.environ.setdefault("LOG_LEVEL", "WARNING")




# --- The receiver: its own process, asyncio, 100 ms per request --------------------------------


def _serve(port_out: multiprocessing.connection.Connection, latency: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                await asyncio.sleep(latency)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                await writer.drain()
                break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port_out.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(main())


def start_receiver(latency: float) -> tuple[multiprocessing.Process, int]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve, args=(child, latency), daemon=True)
    process.start()
    return process, parent.recv()


# --- RSS of a process tree ---------------------------------------------------------------------


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    """Proportional set size: shared pages (a fork's copy-on-write memory) split between sharers."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


# --- One run -----------------------------------------------------------------------------------


def run(label: str, *, worker_class: str, deliveries: int, port: int, per_delivery_jobs: bool) -> dict[str, float]:
    from django.db import transaction

    from broxiva.models import Tenant
    from broxiva.queues import enqueue_many, get_queue, rq_name
    from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
    from notifications.services import publish_event

    WebhookAttempt.objects.all().delete()
    WebhookDelivery.objects.all().delete()
    WebhookMessage.objects.all().delete()
    WebhookEndpoint.objects.all().delete()
    queue = get_queue("webhook-delivery")
    queue.connection.flushdb()
    from notifications.services.webhooks import clear_dispatch_flag

    clear_dispatch_flag()  # a flag left by the previous case's queued (and flushed) dispatch job
    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench", "contact_email": ""})
    WebhookEndpoint.objects.create(tenant=tenant, url=f"http://127.0.0.1:{port}/hook")

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    worker = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "rqworker",
            "--worker-class",
            worker_class,
            rq_name("webhook-delivery"),
            "--verbosity",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        from rq import Worker

        deadline = time.monotonic() + 30
        while not Worker.all(queue=queue):  # started and idle
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not start")
            time.sleep(0.05)
        from django.db.models import Max
        from django.utils import timezone

        peak = peak_pss = 0
        if per_delivery_jobs:
            with transaction.atomic():
                for n in range(deliveries):
                    WebhookMessage.objects.create(tenant=tenant, event_type="bench.event", payload={"n": n})
                WebhookDelivery.objects.bulk_create(
                    WebhookDelivery(message=m, endpoint_id=WebhookEndpoint.objects.get().id)
                    for m in WebhookMessage.objects.all()
                )
            ids = list(WebhookDelivery.objects.values_list("id", flat=True))
            started, started_at = time.perf_counter(), timezone.now()
            enqueue_many("webhook-delivery", "bench.jobs.webhook_deliver_one", [{"delivery_id": i} for i in ids])
        else:
            with transaction.atomic():
                for n in range(deliveries):
                    publish_event(tenant_id=tenant.id, event_type="bench.event", payload={"n": n, "pad": "x" * 200})
                # Timed from the commit: the dispatch job is queued by the commit hook.
                started, started_at = time.perf_counter(), timezone.now()
        done, tick = 0, 0
        while done < deliveries:
            time.sleep(0.02)
            pids = _tree(worker.pid)
            peak = max(peak, sum(_rss_kb(p) for p in pids))
            if tick % 5 == 0:  # smaps_rollup walks the page tables: read it less often
                peak_pss = max(peak_pss, sum(_pss_kb(p) for p in pids))
            tick += 1
            if tick % 10 == 0:
                done = WebhookDelivery.objects.filter(status="succeeded").count()
            if time.perf_counter() - started > 900:
                raise RuntimeError(f"{label}: only {done} of {deliveries} delivered after 900 s")
        # From the commit of the work to the last delivery recorded (not to this loop's next look).
        elapsed = (WebhookDelivery.objects.aggregate(at=Max("delivered_at"))["at"] - started_at).total_seconds()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    failed = WebhookDelivery.objects.exclude(status="succeeded").count()
    attempts = WebhookAttempt.objects.count()
    if failed or attempts != deliveries:
        raise RuntimeError(f"{label}: {failed} not delivered, {attempts} attempt rows for {deliveries}")
    return {"rate": deliveries / elapsed, "seconds": elapsed, "rss_mb": peak / 1024, "pss_mb": peak_pss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--baseline-deliveries", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    ensure_database(BENCH_DB)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from broxiva.queues import get_queue

    call_command("migrate", verbosity=0)
    if get_queue("webhook-delivery").connection.dbsize():
        sys.exit(f"REDIS_QUEUE_DB {settings.REDIS_QUEUE_DB} is not empty: use a Redis DB nobody else uses")
    receiver, port = start_receiver(args.latency)
    cases = [
        ("project, forking BroxivaWorker", "broxiva.worker.BroxivaWorker", args.deliveries, False),
        ("project, BroxivaSimpleWorker", "broxiva.worker.BroxivaSimpleWorker", args.deliveries, False),
        ("baseline: job per delivery, plain forking rq.Worker", "rq.Worker", args.baseline_deliveries, True),
    ]
    print(
        f"{args.deliveries} deliveries (baseline {args.baseline_deliveries}) to a receiver answering after "
        f"{args.latency * 1000:.0f} ms; WEBHOOK_CONCURRENCY={settings.WEBHOOK_CONCURRENCY}; {os.cpu_count()} CPUs"
    )
    results: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in cases}
    try:
        for _ in range(args.rounds):
            for label, cls, count, per_job in cases:
                results[label].append(
                    run(label, worker_class=cls, deliveries=count, port=port, per_delivery_jobs=per_job)
                )
    finally:
        receiver.terminate()
        get_queue("webhook-delivery").connection.flushdb()
    base = statistics.median(r["rate"] for r in results[cases[-1][0]])
    print(f"{'case':<55} {'deliveries/s':>13} {'peak RSS MB':>12} {'peak PSS MB':>12} {'× baseline':>11}")
    for label, rows in results.items():
        rate = statistics.median(r["rate"] for r in rows)
        rss = max(r["rss_mb"] for r in rows)
        pss = max(r["pss_mb"] for r in rows)
        print(f"{label:<55} {rate:>13.0f} {rss:>12.1f} {pss:>12.1f} {rate / base:>10.1f}×")
    print("RSS and PSS: summed over the worker process and its children (the forked work horse); RSS counts")
    print("pages a fork shares with its parent twice, PSS splits them. Rates: median of the rounds.")


if __name__ == "__main__":
    main()
