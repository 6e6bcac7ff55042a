"""``manage.py fx_convert AMOUNT FROM TO [--at DATE]``: convert an amount and show the rate used."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from fx.errors import FxError
from fx.services import convert, quote
from fx.services.rates import to_amount


def parse_moment(text: str) -> date | datetime:
    """Parse ``2024-05-17`` (that day's rate) or an ISO datetime (naive = UTC)."""
    text = text.strip()
    try:
        value = parse_datetime(text) if ("T" in text or " " in text) else parse_date(text)
    except ValueError:
        value = None
    if value is None:
        raise CommandError(f"--at {text!r} is not a date (YYYY-MM-DD) or an ISO datetime")
    return value


class Command(BaseCommand):
    help = "Convert AMOUNT from one currency to another with the stored rates, and print the rate used."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("amount")
        parser.add_argument("from_currency", metavar="FROM")
        parser.add_argument("to_currency", metavar="TO")
        parser.add_argument("--at", help="use the rate in force then: YYYY-MM-DD (that day's) or an ISO datetime")

    def handle(self, *args: Any, **options: Any) -> None:
        at = parse_moment(options["at"]) if options["at"] else None
        try:
            amount = to_amount(options["amount"])  # InvalidAmount: not a number, or out of range
            used = quote(options["from_currency"], options["to_currency"], at=at)
            result = convert(amount, options["from_currency"], options["to_currency"], at=at)
        except FxError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{amount:f} {used.from_currency} = {result:f} {used.to_currency}")
        as_of = f"as of {used.as_of:%Y-%m-%d %H:%M:%S} UTC" if used.as_of else "same currency"
        source = f"{used.provider}, " if used.provider else ""
        self.stdout.write(
            f"rate: 1 {used.from_currency} = {used.rate.normalize():f} {used.to_currency} ({source}{as_of}, {used.via})"
        )
