"""The queue contract of DESIGN.md §4, as data.

Pure Python on purpose: settings import it to build ``RQ_QUEUES``, so it must not touch Django
or Redis. ``broxiva.queues`` is the public API on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# Defaults for any queue (DESIGN.md §4): 3 attempts, exponential backoff from 10 s,
# 60 s job timeout, keep the last 100 completed and 500 failed jobs.
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF_BASE = 10
DEFAULT_TIMEOUT = 60
DEFAULT_KEEP_COMPLETED = 100
DEFAULT_KEEP_FAILED = 500


@dataclass(frozen=True)
class QueuePolicy:
    """How jobs on one queue are run, retried and kept.

    ``attempts`` counts total executions (3 = one run and two retries). ``max_delay`` of
    ``None`` means the exponential backoff is not capped. ``priority`` orders queues for
    workers: the lowest is served first.
    """

    name: str
    purpose: str
    priority: int
    schedule: str = "on demand"
    attempts: int = DEFAULT_ATTEMPTS
    backoff_base: int = DEFAULT_BACKOFF_BASE
    max_delay: int | None = None
    timeout: int = DEFAULT_TIMEOUT
    keep_completed: int = DEFAULT_KEEP_COMPLETED
    keep_failed: int = DEFAULT_KEEP_FAILED
    # An explicit schedule of waits, for queues whose retry curve is not a plain exponential
    # (webhook delivery follows the Standard Webhooks recommendation).
    delays: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"queue {self.name}: attempts must be at least 1")
        if self.delays and len(self.delays) != self.attempts - 1:
            raise ValueError(f"queue {self.name}: {self.attempts} attempts need {self.attempts - 1} delays")

    @property
    def retries(self) -> int:
        return self.attempts - 1

    def retry_delays(self) -> list[int]:
        """Return the wait in seconds before each retry n = 1, 2, …: min(base·2^(n-1), max_delay)."""
        if self.delays:
            return list(self.delays)
        waits = []
        for n in range(1, self.attempts):
            wait = self.backoff_base * 2 ** (n - 1)
            if self.max_delay is not None:
                wait = min(wait, self.max_delay)
            waits.append(wait)
        return waits

    def as_dict(self) -> dict[str, object]:
        return {
            "purpose": self.purpose,
            "priority": self.priority,
            "schedule": self.schedule,
            "attempts": self.attempts,
            "backoff_base": self.backoff_base,
            "max_delay": self.max_delay,
            "retry_delays": self.retry_delays(),
            "timeout": self.timeout,
            "keep_completed": self.keep_completed,
            "keep_failed": self.keep_failed,
        }


# The kernel's own periodic work (queue health, retention, crash recovery) runs on a queue of
# its own, served before every other: the checks must not wait behind the backlog they report,
# and an operator reading "email: 6 finished" knows six e-mails went out. One attempt: a sweep
# that failed is simply run again by the next minute's entry.
MAINTENANCE_QUEUE = "maintenance"

# RQ job statuses of a job that still holds its id (waiting, running, or due to run again); a
# finished/failed registry entry whose job hash says one of these is stale (the id was reused).
LIVE_STATUSES: tuple[str, ...] = ("queued", "started", "scheduled", "deferred")

# Priority puts what a person is waiting for (a password e-mail, a "verify now" click, a push)
# ahead of bulk work (catalogue syncs and sitemaps), which can always wait a few minutes.
POLICIES: dict[str, QueuePolicy] = {
    p.name: p
    for p in (
        QueuePolicy(
            MAINTENANCE_QUEUE, "kernel housekeeping (queue health, retention, crash recovery)", priority=0,
            schedule="every minute", attempts=1,
        ),
        QueuePolicy("email", "e-mail dispatch", priority=1),
        QueuePolicy("notification", "push notifications", priority=2),
        QueuePolicy(
            "domain-verification", "custom domains", priority=3, schedule="every 5 min (pending)",
            attempts=10, backoff_base=60, max_delay=3600,
        ),
        QueuePolicy(
            "webhook-delivery", "outbound webhooks", priority=4,
            # Standard Webhooks' recommended schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
            attempts=8, backoff_base=5, max_delay=36000,
            delays=(5, 300, 1800, 7200, 18000, 36000, 36000),
        ),
        QueuePolicy(
            "fx-refresh", "exchange rates", priority=5, schedule="every 15 min",
            attempts=3, backoff_base=5, max_delay=60,
        ),
        QueuePolicy(
            "translation", "LLM translations", priority=6,
            attempts=3, backoff_base=10, max_delay=300, timeout=300,
        ),
        QueuePolicy(
            "product-sync", "catalogue sync", priority=7, schedule="delta every 6 h",
            attempts=5, backoff_base=30, max_delay=600, timeout=900,
        ),
        QueuePolicy(
            "sitemap-generation", "sitemaps", priority=8, schedule="daily 03:00 UTC",
            attempts=3, backoff_base=60, max_delay=600, timeout=1800,
        ),
    )
}

# Queue names in the order a worker should listen to them.
PRIORITY_ORDER: tuple[str, ...] = tuple(sorted(POLICIES, key=lambda name: POLICIES[name].priority))


OVERRIDABLE = ("attempts", "backoff_base", "max_delay", "timeout", "keep_completed", "keep_failed")


def apply_overrides(overrides: object) -> dict[str, QueuePolicy]:
    """Return the policies with per-deployment overrides applied, refusing unknown queues or fields.

    ``overrides`` is ``{"<queue>": {"timeout": 120, "attempts": 5, ...}}`` (``QUEUE_OVERRIDES``).
    """
    if not isinstance(overrides, dict):
        raise ValueError("must be a JSON object keyed by queue name")
    result = dict(POLICIES)
    for name, fields in overrides.items():
        if name not in POLICIES:
            raise ValueError(f"unknown queue {name!r}")
        if not isinstance(fields, dict) or not set(fields) <= set(OVERRIDABLE):
            raise ValueError(f"{name}: only {', '.join(OVERRIDABLE)} can be overridden")
        for key, value in fields.items():
            minimum = 1 if key in ("attempts", "timeout") else 0
            valid = (value is None and key == "max_delay") or (
                isinstance(value, int) and not isinstance(value, bool) and value >= minimum
            )
            if not valid:
                raise ValueError(f"{name}.{key}={value!r} is not a valid value")
        # An explicit delay schedule no longer fits once the curve is overridden.
        delays = () if {"attempts", "backoff_base", "max_delay"} & set(fields) else POLICIES[name].delays
        result[name] = replace(POLICIES[name], delays=delays, **fields)
    return result


def rq_queue_name(name: str, prefix: str) -> str:
    """Return the RQ queue name for a logical queue name under ``QUEUE_PREFIX``.

    RQ's own key layout (``rq:queue:<name>``, ``rq:job:<id>``, ``rq:failed:<name>``…) is kept as
    is; the prefix only namespaces queue names, so two deployments can share one Redis DB.
    """
    return f"{prefix}:{name}" if prefix else name
