"""Print the queue contract as the running configuration sees it, with live counts."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand
from rq import Worker

from broxiva.management.errors import redis_required
from broxiva.queues import PRIORITY_ORDER, get_queue, policy, rq_name
from broxiva.schedules import entries_by_queue


def queue_report() -> dict[str, dict[str, Any]]:
    """Return, per queue in priority order, its policy, periodic entries and live counts."""
    schedules = entries_by_queue()
    report: dict[str, dict[str, Any]] = {}
    for name in PRIORITY_ORDER:
        queue = get_queue(name)
        report[name] = {
            "rq_name": rq_name(name),
            **policy(name).as_dict(),
            "periodic": [
                {"id": e.id, "cron": e.cron, "interval": e.interval, "func": e.func, "description": e.description}
                for e in schedules.get(name, [])
            ],
            "waiting": queue.count,
            # Read-only counts: no registry cleanup from an operator's status command.
            "active": queue.started_job_registry.get_job_count(cleanup=False),
            "scheduled": queue.scheduled_job_registry.get_job_count(cleanup=False),
            "deferred": queue.deferred_job_registry.get_job_count(cleanup=False),
            "failed": queue.failed_job_registry.get_job_count(cleanup=False),
            "finished": queue.finished_job_registry.get_job_count(cleanup=False),
            "workers": Worker.count(queue=queue),
        }
    return report


def _seconds(value: int | None) -> str:
    if value is None:
        return "-"
    if value % 3600 == 0:
        return f"{value // 3600}h"
    if value % 60 == 0:
        return f"{value // 60}m"
    return f"{value}s"


class Command(BaseCommand):
    help = "Print every queue's policy, periodic entries and live counts (--json for machines)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object keyed by queue name")

    @redis_required
    def handle(self, *args: Any, **options: Any) -> None:
        report = queue_report()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        header = (
            f"{'queue':<20} {'prio':>4} {'attempts':>8} {'backoff':>7} {'max':>5} {'timeout':>7} "
            f"{'keep ok/fail':>12} {'waiting':>7} {'active':>6} {'sched':>5} {'failed':>6} {'workers':>7}"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for name, q in report.items():
            self.stdout.write(
                f"{name:<20} {q['priority']:>4} {q['attempts']:>8} {_seconds(q['backoff_base']):>7} "
                f"{_seconds(q['max_delay']):>5} {_seconds(q['timeout']):>7} "
                f"{str(q['keep_completed']) + '/' + str(q['keep_failed']):>12} {q['waiting']:>7} {q['active']:>6} "
                f"{q['scheduled']:>5} {q['failed']:>6} {q['workers']:>7}"
            )
        self.stdout.write("")
        self.stdout.write("Retry waits (s): " + "; ".join(f"{n} {q['retry_delays']}" for n, q in report.items()))
        self.stdout.write("Periodic entries (cron in UTC):")
        entries = [(n, e) for n, q in report.items() for e in q["periodic"]]
        if not entries:
            self.stdout.write("  (none)")
        for name, e in entries:
            when = e["cron"] or f"every {e['interval']}s"
            self.stdout.write(f"  {e['id']:<28} {name:<20} {when:<16} {e['description']}")
