"""Show the transactional outbox's backlog and push it to Redis now (``broxiva.outbox.relay``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Min
from django.utils import timezone

from broxiva import outbox
from broxiva.models import OutboxJob


class Command(BaseCommand):
    help = (
        "Print how many jobs wait in the outbox (recorded in a transaction, not yet in Redis) and since when, "
        "then push them to their queues. Safe while workers, hooks and the periodic relay run: rows are locked."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only show what waits, push nothing")
        parser.add_argument(
            "--grace", type=int, default=0, metavar="SECONDS",
            help="only push rows older than this (default 0: everything; the periodic relay uses "
                 "OUTBOX_RELAY_GRACE_SECONDS)",
        )
        parser.add_argument("--limit", type=int, default=None, help="push at most this many rows")

    def handle(self, *args: Any, **options: Any) -> None:
        self.show_backlog()
        if options["dry_run"]:
            return
        report = outbox.relay(limit=options["limit"], grace_seconds=max(0, options["grace"]))
        self.stdout.write(
            f"pushed {report.pushed}, already in Redis {report.already_in_redis} (deleted), failed {report.failed}"
        )
        for error in report.errors:
            self.stdout.write(f"  error: {error}")
        self.show_backlog()
        if report.failed:
            raise CommandError(f"{report.failed} outbox job(s) could not be pushed; they stay for the next relay")

    def show_backlog(self) -> None:
        waiting, oldest = outbox.backlog()
        if not waiting:
            self.stdout.write("outbox: empty")
            return
        age = int((timezone.now() - oldest).total_seconds())
        self.stdout.write(f"outbox: {waiting} job(s) waiting, oldest recorded {age}s ago ({oldest.isoformat()})")
        per_queue = (
            OutboxJob.objects.values("queue").annotate(n=Count("id"), oldest=Min("created_at")).order_by("queue")
        )
        for row in per_queue:
            self.stdout.write(f"  {row['queue']}: {row['n']} (oldest {row['oldest'].isoformat()})")
