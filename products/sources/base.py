"""The contract between the sync engine and a source module.

A source module (``products/sources/<name>.py``) exposes ``SOURCE`` (an instance of a ``Source``
subclass). The engine asks it for one page at a time and stores each page before asking for the
next, so a run can stop after any page and resume from the cursor it saved.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal

Mode = Literal["full", "delta", "inventory_only"]


class SourceError(Exception):
    """A source could not be read. ``transient`` says whether trying again later may help."""

    transient: bool = True

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


class SourceAuthError(SourceError):
    """401/403: the credentials are wrong or lack a scope. The run fails at once with this text."""

    transient = False


class SourceThrottled(SourceError):
    """The source asked us to wait (429 + Retry-After, Shopify ``THROTTLED``): the job is deferred."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, transient=True)
        self.retry_after = retry_after


@dataclass(frozen=True)
class SourceCategory:
    external_id: str
    name: str


@dataclass(frozen=True)
class SourceVariant:
    external_id: str
    sku: str = ""
    title: str = ""
    price: Decimal | None = None
    inventory_quantity: int | None = None


@dataclass(frozen=True)
class SourceProduct:
    """One product as the source has it, in our field names.

    ``status`` is one of ``active``, ``draft``, ``archived``. ``description`` is HTML.
    ``updated_at`` is timezone-aware (UTC). For an ``inventory_only`` page only ``external_id``,
    ``inventory_quantity``, ``variants`` (with their quantities) and ``updated_at`` are meaningful.
    """

    external_id: str
    updated_at: dt.datetime
    title: str = ""
    description: str = ""
    handle: str = ""
    status: str = "active"
    price: Decimal | None = None
    currency: str = ""
    inventory_quantity: int | None = None
    categories: tuple[SourceCategory, ...] = ()
    variants: tuple[SourceVariant, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A product of the page that could not be read: counted and listed on the run, never fatal."""

    external_id: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"external_id": self.external_id, "reason": self.reason}


@dataclass(frozen=True)
class Page:
    """One page of a source's listing. ``next_cursor`` is opaque to the engine; ``None`` ends the run."""

    products: list[SourceProduct]
    next_cursor: str | None
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class Connection:
    """What a source needs of a ``SourceConnection`` row (no model import, so sources stay pure).

    ``credentials`` holds the source's own names (``access_token``; ``consumer_key`` and
    ``consumer_secret``; ``access_token`` and ``store_hash``). Never log or raise it.
    """

    id: int
    base_url: str
    credentials: dict[str, Any]
    currency: str = ""


class Source:
    """A product source. Subclasses set ``name`` and implement ``fetch_page``."""

    name: ClassVar[str]

    def fetch_page(
        self, connection: Connection, *, mode: Mode, since: dt.datetime | None, cursor: str | None
    ) -> Page:
        """Return the page after ``cursor`` (``None``: the first) of products changed since ``since``.

        ``since`` is ``None`` for a full listing. Raises ``SourceAuthError``, ``SourceThrottled``
        or ``SourceError``; a malformed product goes in ``Page.skipped``, it never raises.
        """
        raise NotImplementedError

    def parse_webhook(self, connection: Connection, headers: dict[str, str], payload: Any) -> list[SourceProduct]:
        """Turn a verified webhook body (already JSON-decoded) into the products it carries.

        A source whose webhooks carry only ids (BigCommerce) fetches those products here.
        Raises ``ValueError`` for a payload that is not a product event.
        """
        raise NotImplementedError
