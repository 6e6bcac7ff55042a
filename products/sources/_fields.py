"""What the Shopify and BigCommerce modules share: reading one field of a product, the JSON
body, the mapping of the kernel's HTTP errors and the scrubbing of credentials from messages.

A field that cannot be read raises ``Malformed`` with the reason in words; the module turns it
into a ``Skipped`` entry for that one product, never an error for the page.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from decimal import Decimal
from typing import Any

from broxiva import http
from products.sources.base import Connection, SourceError

NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class Malformed(Exception):
    """One product cannot be read; the text says why, for the run's skipped list."""


def text(value: Any, what: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise Malformed(f"{what} is {'missing or ' if required else ''}not text")
    return value


def number(value: Any) -> Decimal | None:
    """Return ``value`` (a JSON number, parsed as ``Decimal``, or a numeric string) or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        return Decimal(value.strip())
    return None


def price(value: Any, what: str) -> Decimal | None:
    if value is None:
        return None
    amount = number(value)
    if amount is None or not amount.is_finite() or amount < 0:
        raise Malformed(f"{what} {str(value)[:30]!r} is not a price")
    return amount


def quantity(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{what} {str(value)[:30]!r} is not a whole number")
    return value


def parse_time(value: Any) -> dt.datetime | None:
    """Return an ISO 8601 (or RFC 2822) time with a zone as UTC, or None (naive times too)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo is not None else None


def required_time(value: Any, what: str) -> dt.datetime:
    parsed = parse_time(value)
    if parsed is None:
        raise Malformed(f"{what} {str(value)[:40]!r} is not a date and time with a zone")
    return parsed


def utc_iso(moment: dt.datetime, *, z: bool = True) -> str:
    if moment.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    text_ = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text_ + ("Z" if z else "+00:00")


def parse_json(resp: http.Response) -> Any:
    """Return the parsed body (numbers as ``Decimal``, never ``float``), or None if not JSON."""
    try:
        return json.loads(resp.body.decode("utf-8-sig"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        return None


def scrub(message: str, connection: Connection) -> str:
    """Return ``message`` without any credential of ``connection`` (an echo must not leak it)."""
    for value in (connection.credentials or {}).values():
        if isinstance(value, str) and len(value) >= 4:
            message = message.replace(value, "[redacted]")
    return " ".join(message.split())[:300]


def from_http_error(source: str, exc: http.HttpError, connection: Connection) -> SourceError:
    """Map a kernel error: timeouts and dropped connections are transient, a refused address,
    an invalid URL or a too-large body are not. Kernel messages name method and host only."""
    return SourceError(f"{source}: {scrub(str(exc), connection)}", transient=exc.transient)
