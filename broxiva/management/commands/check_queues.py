"""Evaluate queue health now, alert on state changes, and exit non-zero when a queue is critical.

The ``queue-health-check`` periodic entry does the same from inside the workers; this command
runs without any worker, so cron (or a Kubernetes CronJob) can still alert when every worker is
gone — the one failure the periodic entry cannot report — and when Redis itself is down: then
it alerts by e-mail/webhook (which need no Redis; once per outage), prints one line on stderr
and exits 2.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from django.core.management.base import BaseCommand
from django.db import DatabaseError
from redis.exceptions import RedisError

from broxiva import health
from broxiva.alerts import check_queues, redis_unreachable


class Command(BaseCommand):
    help = (
        "Evaluate queue health, send alerts on state changes; exit 2 when a queue is critical or Redis "
        "is unreachable, 1 on warning."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print the health report as JSON")
        parser.add_argument("--no-alerts", action="store_true", help="only evaluate and print; send nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            alerts = [] if options["no_alerts"] else check_queues()
            report = health.queues_health()
        except RedisError as exc:
            self._redis_down(exc, options)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            for name, queue in report["queues"].items():
                reasons = "; ".join(queue["reasons"])
                self.stdout.write(f"{name:<20} {queue['status']:<8} {reasons}")
            outbox = report["outbox"]
            self.stdout.write(f"{'(outbox)':<20} {outbox['status']:<8} {'; '.join(outbox['reasons'])}")
            self.stdout.write(f"overall: {report['status']}; alerts sent: {len(alerts)}")
        exit_codes = {health.OK: 0, health.WARNING: 1, health.CRITICAL: 2}
        code = exit_codes.get(report["status"], 2)
        if code:
            raise SystemExit(code)

    def _redis_down(self, exc: RedisError, options: dict[str, Any]) -> NoReturn:
        message = health.redis_error_message(exc)
        if options["no_alerts"]:
            outcome = "no alert (--no-alerts)"
        else:
            try:
                outcome = "alert sent" if redis_unreachable(message) is not None else "alert already sent"
            except DatabaseError as db_exc:  # the alert is recorded first: no database, no alert
                outcome = f"no alert: the database is unavailable too ({type(db_exc).__name__})"
        if options["json"]:
            self.stdout.write(json.dumps({"status": health.CRITICAL, "error": message}))
        self.stderr.write(f"{message} ({outcome})")
        raise SystemExit(2)
