"""Run an RQ worker on the project's queues, in priority order, with RQ's scheduler for retries.

With no queue named it serves them all, the kernel's ``maintenance`` queue first, under
``QUEUE_PREFIX``: the one worker command for the Procfile, ``bin/run`` and production.
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from broxiva.queues import PRIORITY_ORDER, UnknownQueue, rq_name


class Command(BaseCommand):
    help = (
        "Shorthand for `rqworker --with-scheduler <queues in priority order>` (maintenance first, QUEUE_PREFIX "
        "applied). Name queues to serve only those (still in priority order); keep at least one worker on "
        "maintenance."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("queues", nargs="*", help="logical queue names (default: all)")
        parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
        parser.add_argument("--name", help="worker name (default: RQ's host.pid)")
        parser.add_argument(
            "--simple", action="store_true",
            help="run jobs in this process (BroxivaSimpleWorker: faster for short jobs, no per-job fork isolation)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        wanted = options["queues"] or list(PRIORITY_ORDER)
        try:
            names = [rq_name(q) for q in PRIORITY_ORDER if q in wanted]
            for q in wanted:
                rq_name(q)
        except UnknownQueue as exc:
            raise CommandError(str(exc)) from None
        extra: dict[str, Any] = {"with_scheduler": True, "burst": options["burst"]}
        if options["name"]:
            extra["name"] = options["name"]
        if options["simple"]:
            extra["worker_class"] = "broxiva.worker.BroxivaSimpleWorker"
        call_command("rqworker", *names, **extra)
