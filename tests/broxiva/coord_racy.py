"""A deliberately broken limiter: the same GCRA, but read-compute-write from Python.

Between its GET and its SET another process can read the same theoretical arrival time, so
concurrent callers all pass. The rate-limit test runs it through the same harness as the real
limiter to show that the harness catches exactly this race.
"""

from __future__ import annotations

import time

from broxiva.connections import get_redis


class RacyRateLimiter:
    def __init__(self, name: str, limit: int, period_seconds: float, burst: int | None = None) -> None:
        self.key = f"ratelimit:{name}"
        self.interval = period_seconds / limit
        self.tolerance = self.interval * (burst or 0)

    def acquire(self, tenant: object = None) -> float:
        client = get_redis()
        now = time.time()
        tat = max(float(client.get(self.key) or now), now)
        wait = tat - self.tolerance - now
        if wait > 0:
            return wait
        client.set(self.key, repr(tat + self.interval), px=int((tat + self.interval - now) * 1000) + 1)
        return 0.0
