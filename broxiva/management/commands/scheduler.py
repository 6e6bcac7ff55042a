"""Run the periodic-entry scheduler: register the entries, then move due jobs to their queues."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand

from broxiva import schedules


class Command(BaseCommand):
    help = (
        "Register the periodic entries (idempotent) and run rq-scheduler with cron read in UTC. Several may run for "
        "redundancy: rq-scheduler's lock (one per QUEUE_PREFIX) lets one at a time move jobs."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", type=int, default=10, help="seconds between checks for due entries")
        parser.add_argument("--burst", action="store_true", help="move what is due once, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("rq_scheduler.scheduler").setLevel(logging.INFO)
        report = schedules.register()
        self.stdout.write(
            f"periodic entries: {len(report['added'])} added, {len(report['updated'])} updated, "
            f"{len(report['removed'])} removed, {len(report['unchanged'])} unchanged"
        )
        # SIGTERM/SIGINT are handled by rq-scheduler: it releases its lock and exits.
        schedules.get_scheduler(interval=options["interval"]).run(burst=options["burst"])
