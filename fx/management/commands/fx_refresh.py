"""``manage.py fx_refresh [--provider P] [--force]``: refresh exchange rates now and say what was stored."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fx.currencies import require
from fx.errors import FxError
from fx.providers import PROVIDER_NAMES
from fx.services import rates_refresh


def _code(value: str) -> str:
    try:
        return require(value)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


class Command(BaseCommand):
    help = "Fetch exchange rates now (one provider call) for every FX_BASE_CURRENCIES base and store them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", choices=PROVIDER_NAMES, help="use this provider only (no fallback chain)")
        parser.add_argument("--force", action="store_true", help="fetch even if the cached rates are under 1 h old")
        parser.add_argument("--base", help="also store rates for this base currency")
        parser.add_argument("--target", action="append", dest="targets", metavar="CODE",
                            help="store only this quote currency (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        base = _code(options["base"]) if options["base"] else None
        targets = [_code(t) for t in options["targets"]] if options["targets"] else None
        try:
            result = rates_refresh(base=base, provider=options["provider"], targets=targets, force=options["force"])
        except FxError as exc:
            raise CommandError(str(exc)) from None
        as_of = f"{result.as_of:%Y-%m-%d %H:%M:%S} UTC" if result.as_of else "?"
        if result.status == "cached":
            self.stdout.write(
                f"Cached rates are fresh ({result.provider}, as of {as_of}) for {', '.join(result.bases)}: "
                "nothing fetched. Use --force to fetch anyway."
            )
            return
        for line in result.skipped:
            self.stdout.write(f"Fell through: {line}")
        per_base = ", ".join(f"{b} {result.stored.get(b, 0)}" for b in result.bases)
        self.stdout.write(self.style.SUCCESS(
            f"Stored {result.total_stored} new rate snapshot(s) from {result.provider} as of {as_of} ({per_base})."
        ))
        verbose = options["verbosity"] >= 2
        for base, table in result.rates.items():
            items = sorted(table.items())
            shown = items if verbose else items[:8]
            text = ", ".join(f"{q} {r.normalize():f}" for q, r in shown)
            more = "" if verbose or len(items) <= len(shown) else f", … {len(items) - len(shown)} more (-v 2 lists all)"
            self.stdout.write(f"  1 {base} = {text}{more}")
        for held in result.held:
            self.stdout.write(self.style.WARNING(
                f"Held back (moved {held.change_percent:.2f}%, not served until confirmed): "
                f"{held.pair} {held.previous.normalize():f} -> {held.rate.normalize():f}"
            ))
        if result.confirmed:
            self.stdout.write(f"Confirmed earlier held rates: {', '.join(result.confirmed)}")
        for code, why in sorted(result.rejected.items()):
            self.stdout.write(self.style.WARNING(f"Rejected {code}: {why}"))
        for base, why in result.unavailable.items():
            self.stdout.write(self.style.WARNING(f"No rates for base {base}: {why}"))
