"""Benchmark: GET /health/queues with 100 and with 100,000 waiting jobs, in the same run.

The health report must cost a fixed number of Redis round trips whatever the number of jobs;
this measures the whole request (Django view, JSON) and the round trips behind it. Baseline:
the same request with 100 jobs waiting, measured before and after the 100,000-job phase.

    REDIS_DB=4 REDIS_QUEUE_DB=5 DJANGO_SETTINGS_MODULE=broxiva.settings DEBUG=1 \\
        .venv/bin/python bench/bench_health.py [--requests 100] [--rounds 5] [--jobs 100000]

The queue DB must be empty (the script refuses otherwise) and is flushed at the end. The
database (the embedded SQLite by default, or DATABASE_URL) is migrated first: the report counts
the transactional outbox with one SQL query.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broxiva.settings")

import django  # noqa: E402

django.setup()

from datetime import UTC, datetime  # noqa: E402

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from redis import Redis  # noqa: E402
from redis.client import Pipeline  # noqa: E402
from redis.connection import AbstractConnection  # noqa: E402
from rq.job import Job, JobStatus  # noqa: E402
from rq.utils import utcformat  # noqa: E402

from broxiva.queues import get_queue, job_options  # noqa: E402

QUEUE = "translation"


def load(key: str, count: int) -> None:
    """Push ``count`` real RQ jobs (one built by RQ, cloned under new ids) onto the list ``key``."""
    queue = get_queue(QUEUE)
    options = job_options(QUEUE)
    prototype = Job.create("tests.jobs.sample.record", args=("bench",), connection=queue.connection,
                           origin=queue.name, timeout=options["timeout"], result_ttl=options["result_ttl"],
                           failure_ttl=options["failure_ttl"], retry=options["retry"], status=JobStatus.QUEUED)
    mapping = prototype.to_dict()
    mapping["enqueued_at"] = utcformat(datetime.now(UTC))
    with queue.connection.pipeline(transaction=False) as pipe:
        for start in range(0, count, 5000):
            ids = [uuid.uuid4().hex for _ in range(min(5000, count - start))]
            for job_id in ids:
                pipe.hset(Job.key_for(job_id), mapping=mapping)
            pipe.rpush(key, *ids)
            pipe.execute()


class Sends:
    """Counts Redis round trips (one per command or pipeline sent) and commands while active."""

    def __init__(self) -> None:
        self.round_trips = self.commands = 0

    def __enter__(self) -> Sends:
        self._send, self._pipe = AbstractConnection.send_packed_command, Pipeline.execute
        self._direct = Redis.execute_command
        sends = self

        def send(conn, command, check_health=True):
            sends.round_trips += 1
            return sends._send(conn, command, check_health)

        def execute(pipe, *args, **kwargs):
            sends.commands += len(pipe.command_stack)
            return sends._pipe(pipe, *args, **kwargs)

        def direct(client, *args, **kwargs):
            sends.commands += 1
            return sends._direct(client, *args, **kwargs)

        AbstractConnection.send_packed_command, Pipeline.execute, Redis.execute_command = send, execute, direct
        return self

    def __exit__(self, *exc) -> None:
        AbstractConnection.send_packed_command, Pipeline.execute = self._send, self._pipe
        Redis.execute_command = self._direct


def timed(client: Client, requests: int) -> list[float]:
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get("/health/queues")
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code in (200, 503), response.status_code
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="requests per case and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()

    queue = get_queue(QUEUE)
    connection = queue.connection
    if connection.dbsize():
        print(f"refusing to run: queue DB {settings.REDIS_QUEUE_DB} is not empty (use a DB nobody else uses)")
        return 2
    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # 503s are expected: no workers
    # The report also counts the transactional outbox (one SQL query): measure it with its table.
    call_command("migrate", verbosity=0)
    client = Client(HTTP_HOST="127.0.0.1")
    cases = {"100 waiting": "bench:small", f"{args.jobs:,} waiting": "bench:large"}
    samples: dict[str, list[float]] = {case: [] for case in cases}
    sends: dict[str, Sends] = {}
    try:
        started = time.perf_counter()
        load("bench:small", 100)
        load("bench:large", args.jobs)
        print(f"loaded {args.jobs + 100:,} jobs in {time.perf_counter() - started:.1f}s")
        client.get("/health/queues")  # connect once, outside the measurement
        # Interleaved rounds: the queue's list is swapped (RENAME, O(1)) between the two cases.
        for _ in range(args.rounds):
            for case, key in cases.items():
                connection.rename(key, queue.key)
                assert connection.llen(queue.key) in (100, args.jobs)
                samples[case] += timed(client, args.requests)
                with Sends() as counted:
                    timed(client, 1)
                sends[case] = counted
                connection.rename(queue.key, key)
    finally:
        connection.flushdb()

    print(f"/health/queues: median of {args.rounds} x {args.requests} requests per case, interleaved")
    print(f"{'case':<20}{'median ms':>10}{'p90 ms':>8}{'round trips':>13}{'commands':>10}")
    for case, times in samples.items():
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"{case:<20}{statistics.median(times):>10.2f}{p90:>8.2f}{sends[case].round_trips:>13}"
              f"{sends[case].commands:>10}")
    small, large = (statistics.median(times) for times in samples.values())
    ratio = large / small
    same_cost = len({(s.round_trips, s.commands) for s in sends.values()}) == 1
    print(f"ratio {args.jobs:,} / 100 = {ratio:.2f} (target <= 1.5); same Redis work: {same_cost}")
    return 0 if ratio <= 1.5 and same_cost else 1


if __name__ == "__main__":
    sys.exit(main())
