"""Coordination primitives against raw redis-py, in the same run (DESIGN.md §9).

    REDIS_DB=4 REDIS_QUEUE_DB=5 DJANGO_SETTINGS_MODULE=broxiva.settings DEBUG=1 \\
        .venv/bin/python bench/bench_coordination.py [--ops 5000] [--rounds 5]

Each case runs ``--ops`` sequential round trips, ``--rounds`` times, interleaved with its
baseline so machine load hits both alike; the median rate is reported. Baseline for locks and
claims: a raw ``SET key token NX PX`` + ``DEL key`` (what both do at minimum: take, then free).
The "cost" column is baseline rate / case rate: 1.0 = as cheap as raw redis-py (target ≤ 1.5).
Only keys under ``bench:`` / ``lock:bench:`` / ``idempotency:bench:`` / ``ratelimit:bench:`` are touched.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broxiva.settings")

import django  # noqa: E402

django.setup()

from broxiva.connections import get_redis  # noqa: E402
from broxiva.idempotency import release, try_acquire_lock  # noqa: E402
from broxiva.locks import acquire_lock, release_lock  # noqa: E402
from broxiva.ratelimit import RateLimiter  # noqa: E402


def raw_set_nx_del(ops: int) -> None:
    client = get_redis()
    for _ in range(ops):
        token = secrets.token_hex(16)
        assert client.set("bench:raw", token, nx=True, px=30_000)
        client.delete("bench:raw")


def raw_set(ops: int) -> None:
    client = get_redis()
    for _ in range(ops):
        client.set("bench:raw-set", "1", px=30_000)


def lock_acquire_release(ops: int) -> None:
    for _ in range(ops):
        result = acquire_lock("bench:lock", ttl_seconds=30)
        assert result.acquired
        assert release_lock("bench:lock", result.lock_id)


def claim_release(ops: int) -> None:
    for _ in range(ops):
        result = try_acquire_lock("bench:claim", ttl_seconds=86400)
        assert result.acquired
        assert release("bench:claim", token=result.token)


def limiter_acquire(ops: int) -> None:
    limiter = RateLimiter("bench:limiter", 100_000, 1, burst=1_000_000)  # never limits: measures the round trip
    for _ in range(ops):
        limiter.acquire()


def rate(func: Callable[[int], None], ops: int) -> float:
    started = time.perf_counter()
    func(ops)
    return ops / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    cases = [
        ("lock acquire+release", lock_acquire_release, "SET NX PX + DEL", raw_set_nx_del),
        ("idempotency claim+release", claim_release, "SET NX PX + DEL", raw_set_nx_del),
        ("rate limiter acquire", limiter_acquire, "SET PX (one round trip)", raw_set),
    ]
    get_redis().delete("bench:raw", "lock:bench:lock", "idempotency:bench:claim")  # left by an interrupted run
    for _, func, _, baseline in cases:  # warm up connections and script caches
        func(200)
        baseline(200)
    print(f"redis {get_redis().info('server')['redis_version']}, {args.ops} ops x {args.rounds} rounds, median rates")
    print(f"{'case':28} {'ops/s':>9}   {'baseline':24} {'ops/s':>9}   cost")
    for name, func, base_name, baseline in cases:
        ours, raw = [], []
        for _ in range(args.rounds):
            raw.append(rate(baseline, args.ops))
            ours.append(rate(func, args.ops))
        ours_rate, raw_rate = statistics.median(ours), statistics.median(raw)
        print(f"{name:28} {ours_rate:9.0f}   {base_name:24} {raw_rate:9.0f}   {raw_rate / ours_rate:.2f}x")
    get_redis().delete("bench:raw", "bench:raw-set", "ratelimit:bench:limiter")


if __name__ == "__main__":
    main()
