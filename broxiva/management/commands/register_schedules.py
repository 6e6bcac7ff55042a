"""Register every app's periodic entries with the scheduler, idempotently."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from broxiva import schedules


class Command(BaseCommand):
    help = "Make the scheduler hold exactly the periodic entries declared in the apps' schedules.py."

    def handle(self, *args: Any, **options: Any) -> None:
        report = schedules.register()
        for state in ("added", "updated", "removed", "unchanged"):
            for entry_id in report[state]:
                self.stdout.write(f"{state:<9} {entry_id}")
        if not any(report.values()):
            self.stdout.write("no periodic entries declared")
