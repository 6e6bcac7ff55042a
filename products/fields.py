"""The product fields a sync tracks, and their canonical form for comparison and for ``Product.synced``.

A value is compared in its canonical form (a price ``Decimal("19.9")`` and ``"19.90"`` are the
same price), so a re-sync of unchanged data is recognised as unchanged and writes nothing.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

# Fields a sync compares one by one (conflicts are per field). Categories and variants are
# compared as wholes and always follow the source (docs/products.md).
FIELDS: tuple[str, ...] = ("title", "description", "handle", "status", "price", "currency", "inventory_quantity")
INVENTORY_FIELDS: tuple[str, ...] = ("inventory_quantity",)
TEXT_FIELDS: tuple[str, ...] = ("title", "description")  # handed to translations when they change
PRICE_PLACES = Decimal("0.0001")


def canon(name: str, value: Any) -> Any:
    """Return ``value`` of field ``name`` in its canonical, JSON-serialisable form."""
    if name == "price":
        return canon_price(value)
    if name == "inventory_quantity":
        return None if value is None else int(value)
    if name == "currency":
        return (value or "").upper()
    return "" if value is None else str(value)


def canon_price(value: Any) -> str | None:
    if value is None or value == "":
        return None
    try:
        return str(Decimal(str(value)).quantize(PRICE_PLACES))
    except (InvalidOperation, ValueError):
        raise ValueError(f"not a price: {str(value)[:40]!r}") from None


def to_model(name: str, value: Any) -> Any:
    """Return the model attribute value for a canonical ``value``."""
    if name == "price":
        return None if value is None else Decimal(value)
    return value


def as_text(value: Any) -> str | None:
    """A canonical value as the text a ``SyncConflict`` row shows."""
    return None if value is None else str(value)
