"""A custom JSON feed at a URL the tenant gave us (schema in docs/products.md).

``GET <feed URL>`` → ``{"products": [...], "next": "<absolute URL>" | null}``; the cursor is the
``next`` URL. Every request (each ``next`` too) goes through the kernel's guarded client, so a
feed cannot point us at an internal address. A delta adds ``updated_since=<ISO 8601>`` to the
first request; a feed that ignores it returns everything, which costs time but writes nothing
unchanged. An optional bearer token (``credentials["token"]``) is sent only to the feed's own
origin, never to a ``next`` link on another host.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from products.sources import _parse
from products.sources._http import get_json, require_secure
from products.sources.base import Connection, Mode, Page, Skipped, Source, SourceError, SourceProduct, SourceVariant

STATUSES = ("active", "draft", "archived")


class CustomFeedSource(Source):
    name = "custom"

    def fetch_page(self, connection: Connection, *, mode: Mode, since: dt.datetime | None, cursor: str | None) -> Page:
        url = cursor or connection.base_url
        params = {"updated_since": since.astimezone(dt.UTC).isoformat()} if since and not cursor else None
        data, _ = get_json("custom feed", url, params=params, headers=_headers(connection, url))
        if not isinstance(data, dict) or not isinstance(data.get("products"), list):
            raise SourceError('custom feed: the answer is not {"products": [...], "next": ...}', transient=False)
        following = data.get("next")
        if following is not None and (
            not isinstance(following, str) or urlsplit(following).scheme not in ("http", "https")
        ):
            raise SourceError("custom feed: next must be an absolute http(s) URL or null", transient=False)
        if following == url:
            raise SourceError("custom feed: next points at the same page", transient=False)
        products, skipped = [], []
        for item in data["products"]:
            try:
                products.append(self.product(connection, item))
            except ValueError as exc:
                value = item.get("id") if isinstance(item, dict) else None
                skipped.append(Skipped(external_id=str(value)[:255] if value is not None else "?", reason=str(exc)))
        return Page(products=products, next_cursor=following, skipped=skipped)

    def parse_webhook(self, connection: Connection, headers: dict[str, str], payload: Any) -> list[SourceProduct]:
        """A custom webhook carries one product object, or ``{"products": [...]}``."""
        items = payload.get("products") if isinstance(payload, dict) and "products" in payload else [payload]
        if not isinstance(items, list) or not items:
            raise ValueError("not a custom-feed product payload")
        return [self.product(connection, item) for item in items]

    def product(self, connection: Connection, item: Any) -> SourceProduct:
        if not isinstance(item, dict):
            raise ValueError("not an object")
        pid = _parse.external_id(item.get("id"))
        status = item.get("status") or "active"
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        currency = item.get("currency") or connection.currency
        if not isinstance(currency, str) or (currency and (len(currency) != 3 or not currency.isalpha())):
            raise ValueError("currency is not an ISO 4217 code")
        variants = item.get("variants") or []
        if not isinstance(variants, list):
            raise ValueError("variants is not a list")
        return SourceProduct(
            external_id=pid,
            updated_at=_parse.timestamp(item.get("updated_at"), key="updated_at"),
            title=_parse.text(item, "title", limit=500),
            description=_parse.text(item, "description"),
            handle=_parse.text(item, "handle", limit=255),
            status=status,
            price=_parse.price(item.get("price")),
            currency=currency.upper(),
            inventory_quantity=_parse.quantity(item.get("inventory_quantity")),
            categories=_parse.categories(item.get("categories")),
            variants=tuple(_variant(v) for v in variants),
        )


def _variant(item: Any) -> SourceVariant:
    if not isinstance(item, dict):
        raise ValueError("a variant is not an object")
    return SourceVariant(
        external_id=_parse.external_id(item.get("id")),
        sku=_parse.text(item, "sku", limit=255),
        title=_parse.text(item, "title", limit=500),
        price=_parse.price(item.get("price"), key="variant price"),
        inventory_quantity=_parse.quantity(item.get("inventory_quantity")),
    )


def _headers(connection: Connection, url: str) -> dict[str, str]:
    token = connection.credentials.get("token")
    if not token:
        return {}
    require_secure(url, what="custom feed")
    if _origin(url) != _origin(connection.base_url):
        return {}
    return {"Authorization": f"Bearer {token}"}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


SOURCE = CustomFeedSource()
