"""Benchmark: domain checks per second by the sweep and the project's workers, against a DNS
server that answers after 50 ms; baseline: one-at-a-time checks in the same run.

- **project**: ``domains_sweep()`` fans out one ``domain_verify_job`` per due domain
  (``enqueue_many``, job ids ``domain-verify-<id>``) to ``--workers`` idle
  ``manage.py worker --simple domain-verification`` processes (``BroxivaSimpleWorker``; the
  forking class with ``--forking``), each job checking ``--batch`` domains at once
  (``DOMAIN_CHECK_BATCH``: its own and siblings still waiting). Timed from the start of the sweep to the last check
  recorded (``last_checked_at``), worker start-up excluded.
- **baseline**: ``domain_verify()`` called for ``--baseline`` domains one after the other in this
  process: the same service, lookups and writes, one check at a time.

Every domain has a TXT record at ``_broxiva-verification.<domain>``; one in ten holds the right
token (verified, with its e-mail and webhook event recorded), the others an old one (a check
that found nothing, backed off). The DNS server (``tests/domains/dns_server.py``, dnslib) runs
in its own process.

    REDIS_PORT=6411 REDIS_DB=4 REDIS_QUEUE_DB=5 DEBUG=1 python bench/bench_domains.py \\
        [--domains 10000] [--workers 16] [--baseline 200] [--delay-ms 50] [--batch 1]

Writes only the bench database (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/broxiva_bench_domains``, created and migrated if missing)
and flushes ``REDIS_QUEUE_DB`` (refusing if it holds keys when it starts).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402  (after the path is set)

BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/broxiva_bench_domains")
os.environ["DATABASE_URL"] = BENCH_DB
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broxiva.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["DNS_TIMEOUT"] = "2"
os.environ["DNS_LIFETIME"] = "5"

TOKEN = "bench-token-{i:06d}-" + "x" * 20


def _serve_dns(records: dict[str, str], delay_ms: float, out) -> None:
    from tests.domains.dns_server import DnsServer

    server = DnsServer(delay_ms=delay_ms)
    for name, value in records.items():
        server.set(name, "TXT", [value])
    out.send(server.port)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(3600)


def _start_workers(n: int, forking: bool, env: dict[str, str]) -> list[subprocess.Popen]:
    cmd = [sys.executable, str(ROOT / "manage.py"), "worker", "domain-verification", *([] if forking else ["--simple"])]
    return [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True) for _ in range(n)]


def _stop(workers: list[subprocess.Popen]) -> None:
    for w in workers:
        os.killpg(w.pid, signal.SIGTERM)
    for w in workers:
        try:
            w.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--baseline", type=int, default=300)
    parser.add_argument("--delay-ms", type=float, default=50)
    parser.add_argument("--forking", action="store_true", help="forking BroxivaWorker instead of --simple")
    parser.add_argument("--batch", type=int, default=1, help="DOMAIN_CHECK_BATCH for the workers")
    args = parser.parse_args()
    os.environ["DOMAIN_CHECK_BATCH"] = str(args.batch)

    ensure_database(BENCH_DB)
    names = [f"d{i:06d}.bench.example" for i in range(args.domains + args.baseline)]
    records = {f"_broxiva-verification.{n}": f"broxiva-verification={TOKEN.format(i=i) if i % 10 == 0 else 'old'}"
               for i, n in enumerate(names)}
    parent, child = multiprocessing.Pipe()
    dns_process = multiprocessing.Process(target=_serve_dns, args=(records, args.delay_ms, child), daemon=True)
    dns_process.start()
    port = parent.recv()
    os.environ["DNS_NAMESERVERS"] = f"127.0.0.1:{port}"

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db.models import Max
    from django.utils import timezone
    from rq import Worker

    from broxiva.models import Tenant
    from broxiva.queues import get_queue
    from domains.models import TenantDomain
    from domains.services import domain_verify, domains_sweep
    from notifications.models import OutboundEmail, WebhookMessage

    call_command("migrate", verbosity=0)
    queue = get_queue("domain-verification")
    if queue.connection.dbsize():
        sys.exit(f"REDIS_QUEUE_DB {settings.REDIS_QUEUE_DB} is not empty: use a Redis DB nobody else uses")
    TenantDomain.objects.all().delete()
    OutboundEmail.objects.all().delete()
    WebhookMessage.objects.all().delete()
    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench",
                                                                      "contact_email": "ops@bench.test"})
    now = timezone.now()
    TenantDomain.objects.bulk_create(
        [TenantDomain(tenant=tenant, domain=n, method="dns_txt", token=TOKEN.format(i=i), next_check_at=now)
         for i, n in enumerate(names)], batch_size=2000)
    ids = list(TenantDomain.objects.order_by("pk").values_list("pk", flat=True))
    baseline_ids, sweep_ids = ids[args.domains:], ids[: args.domains]
    print(f"{args.domains} due domains (baseline {args.baseline}), DNS answering after {args.delay_ms:g} ms, "
          f"{args.workers} {'forking' if args.forking else 'simple'} worker processes, "
          f"DOMAIN_CHECK_BATCH={args.batch}, "
          f"{os.cpu_count()} CPUs")

    # Baseline: one check at a time, in this process.
    started = time.perf_counter()
    for pk in baseline_ids:
        domain_verify(domain_id=pk)
    base_rate = len(baseline_ids) / (time.perf_counter() - started)
    print(f"baseline, one at a time: {base_rate:7.1f} checks/s")
    TenantDomain.objects.filter(pk__in=baseline_ids).update(next_check_at=now + timedelta(days=1))  # not due

    # The project: the sweep's fan-out to idle workers. The baseline rows are checked already
    # (not due), so the sweep enqueues exactly the sweep's domains.
    queue.connection.flushdb()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    workers = _start_workers(args.workers, args.forking, env)
    try:
        deadline = time.monotonic() + 120
        while len(Worker.all(queue=queue)) < args.workers:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
            time.sleep(0.1)
        time.sleep(1)
        started, started_at = time.perf_counter(), timezone.now()
        report = domains_sweep()
        sweep_seconds = time.perf_counter() - started
        todo = TenantDomain.objects.filter(pk__in=sweep_ids, last_checked_at__isnull=True)
        while (left := todo.count()) > 0:
            if time.perf_counter() - started > 1200:
                raise RuntimeError(f"{left} domains not checked after 1200 s")
            time.sleep(0.5)
        last = TenantDomain.objects.filter(pk__in=sweep_ids).aggregate(at=Max("last_checked_at"))["at"]
        elapsed = (last - started_at).total_seconds()
    finally:
        _stop(workers)
        dns_process.terminate()
        queue.connection.flushdb()  # leave REDIS_QUEUE_DB empty for the next run
    verified = TenantDomain.objects.filter(pk__in=sweep_ids, status="verified").count()
    rate = len(sweep_ids) / elapsed
    print(f"sweep fan-out: {report.enqueued} jobs enqueued in {sweep_seconds:.2f} s; {len(sweep_ids)} checks in "
          f"{elapsed:.1f} s = {rate:7.1f} checks/s ({verified} verified); {rate / base_rate:.1f}x the baseline")


if __name__ == "__main__":
    main()
