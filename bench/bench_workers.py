"""Worker classes compared: forking ``BroxivaWorker`` against ``BroxivaSimpleWorker`` (and RQ's own).

Each round enqueues the same jobs (``enqueue_many``) and runs one real ``manage.py rqworker
--burst`` process of each class over them; a burst over an empty queue, timed the same way, is
subtracted so the figure is jobs per second of work, not of process start-up. Baseline: the
forking class. Cases: no-op jobs (the queue machinery itself) and jobs that wait 20 ms (an
HTTP call: both classes are then bound by the wait, one job at a time).

    REDIS_DB=10 REDIS_QUEUE_DB=11 DJANGO_SETTINGS_MODULE=broxiva.settings DEBUG=1 \\
        .venv/bin/python bench/bench_workers.py [--jobs 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broxiva.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from broxiva.queues import enqueue_many, get_queue, rq_name  # noqa: E402

QUEUE = "notification"
# RQ's own classes show what the project's per-job work (retention trim, log context) costs.
CLASSES = {
    "fork (BroxivaWorker)": "broxiva.worker.BroxivaWorker",
    "simple (BroxivaSimpleWorker)": "broxiva.worker.BroxivaSimpleWorker",
    "fork (plain rq.Worker)": "rq.Worker",
    "simple (plain rq.SimpleWorker)": "rq.SimpleWorker",
}


def burst(worker_class: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT), LOG_LEVEL="WARNING")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "rqworker", "--burst", "--worker-class", worker_class,
         rq_name(QUEUE), "--verbosity", "0"],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def run_case(func: str, kwargs: dict, jobs: int, rounds: int) -> dict[str, float]:
    queue = get_queue(QUEUE)
    rates: dict[str, list[float]] = {name: [] for name in CLASSES}
    for _ in range(rounds):
        for name, cls in CLASSES.items():
            queue.empty()
            startup = burst(cls)
            enqueue_many(QUEUE, func, [kwargs] * jobs)
            elapsed = burst(cls)
            assert queue.count == 0, "the burst left jobs behind"
            rates[name].append(jobs / max(elapsed - startup, 1e-6))
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cases = [("no-op job", "bench.jobs.noop", {}), ("20 ms wait", "bench.jobs.wait", {"seconds": 0.02})]
    baseline = next(iter(CLASSES))
    print(f"{args.jobs} jobs per burst, median of {args.rounds} rounds; baseline: {baseline}")
    for label, func, kwargs in cases:
        rates = run_case(func, kwargs, args.jobs, args.rounds)
        for name, rate in rates.items():
            print(f"  {label:<11} {name:<30} {rate:8.1f} jobs/s  {rate / rates[baseline]:5.2f}x")
    get_queue(QUEUE).empty()


if __name__ == "__main__":
    main()
