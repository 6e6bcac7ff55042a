"""Delete old failed or finished jobs (the seed's ``queue.clean(86400000, 'failed')``)."""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from broxiva.management.errors import redis_required
from broxiva.queues import UnknownQueue, policy
from broxiva.retention import STATES, delete_jobs, jobs_older_than

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Return seconds for ``90``, ``90s``, ``30m``, ``24h`` or ``7d``; ValueError otherwise."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 24h or 7d")
    return int(match.group(1)) * _UNIT[match.group(2)]


class Command(BaseCommand):
    help = "Delete a queue's failed (or finished) jobs that ended more than --older-than ago, with their data."

    def add_arguments(self, parser) -> None:
        parser.add_argument("queue", help="logical queue name, e.g. fx-refresh")
        parser.add_argument("--state", choices=sorted(STATES), default="failed", help="registry to clean")
        parser.add_argument("--older-than", required=True, dest="older_than", help="e.g. 24h, 30m, 7d, 3600")
        parser.add_argument("--dry-run", action="store_true", help="list what would be deleted, change nothing")

    @redis_required
    def handle(self, *args: Any, **options: Any) -> None:
        name, state = options["queue"], options["state"]
        try:
            policy(name)
            seconds = parse_duration(options["older_than"])
        except (UnknownQueue, ValueError) as exc:
            raise CommandError(str(exc)) from None
        old = jobs_older_than(name, state, seconds)
        shown = old if options["verbosity"] >= 2 else old[:20]
        for job_id in shown:
            self.stdout.write(f"{'would delete' if options['dry_run'] else 'deleting'} {job_id}")
        if len(shown) < len(old):
            self.stdout.write(f"… and {len(old) - len(shown)} more (-v 2 lists them all)")
        if options["dry_run"]:
            self.stdout.write(f"dry run: would delete {len(old)} {state} job(s) older than {options['older_than']} "
                              f"from {name}")
            return
        deleted = delete_jobs(name, state, old)
        self.stdout.write(f"deleted {deleted} {state} job(s) older than {options['older_than']} from {name}")
