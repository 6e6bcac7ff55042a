"""Small readers shared by the REST sources: each raises ``ValueError`` with a reason a person can act on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from products.sources.base import SourceCategory


def external_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise ValueError("missing or invalid id")
    text = str(value).strip()
    if len(text) > 255:
        raise ValueError("id longer than 255 characters")
    return text


def text(item: dict[str, Any], key: str, *, limit: int | None = None) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    if limit is not None and len(value) > limit:
        raise ValueError(f"{key} longer than {limit} characters")
    return value


def price(value: Any, *, key: str = "price") -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{key} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{key} {str(value)[:20]!r} is not a number") from None
    if not number.is_finite() or number < 0 or number >= Decimal("1e10"):
        raise ValueError(f"{key} {str(value)[:20]!r} is out of range")
    return number


def quantity(value: Any, *, key: str = "inventory_quantity") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise ValueError(f"{key} is not an integer")
    if abs(value) >= 2**31:
        raise ValueError(f"{key} is out of range")
    return value


def timestamp(value: Any, *, key: str) -> dt.datetime:
    """An ISO 8601 time; one without an offset is read as UTC (WooCommerce's ``*_gmt`` fields)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"missing {key}")
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{key} {value[:40]!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def categories(value: Any) -> tuple[SourceCategory, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("categories is not a list")
    found = []
    for item in value:
        if not isinstance(item, dict):
            raise ValueError("a category is not an object")
        found.append(SourceCategory(external_id=external_id(item.get("id")), name=text(item, "name", limit=255)))
    return tuple(found)
