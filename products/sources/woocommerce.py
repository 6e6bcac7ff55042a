"""WooCommerce REST API v3 (``/wp-json/wc/v3/products``).

- Auth: the REST key pair over HTTPS as HTTP basic auth (WooCommerce's documented method for
  https; the query-string fallback is only for servers that strip ``Authorization``).
- Paging: ``per_page`` (≤ 100) and ``page``, with ``X-WP-TotalPages`` saying how many. The
  cursor is the next page number. A full or inventory listing is ordered by ``id`` (a product
  edited during the run cannot shift the pages and hide another, which a full sync would then
  archive); a delta by ``modified`` with ``modified_after`` + ``dates_are_gmt=true``.
- Variations: the product listing carries only their ids, so each *variable* product costs one
  more call (``/products/<id>/variations``, paged the same way). Simple products cost nothing.
- Currency: products carry none; the connection's ``currency`` is used.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from django.conf import settings

from products.sources import _parse
from products.sources._http import get_json, require_secure
from products.sources.base import (
    Connection,
    Mode,
    Page,
    Skipped,
    Source,
    SourceAuthError,
    SourceError,
    SourceProduct,
    SourceVariant,
)

API = "/wp-json/wc/v3"
STATUSES = {
    "publish": "active",
    "draft": "draft",
    "pending": "draft",
    "private": "draft",
    "future": "draft",
    "trash": "archived",
}
INVENTORY_FIELDS = "id,type,stock_quantity,date_modified_gmt"


class WooCommerceSource(Source):
    name = "woocommerce"

    def fetch_page(self, connection: Connection, *, mode: Mode, since: dt.datetime | None, cursor: str | None) -> Page:
        page = int(cursor) if cursor else 1
        params: dict[str, Any] = {
            "per_page": settings.PRODUCT_SYNC_PAGE_SIZE,
            "page": page,
            "orderby": "modified" if since else "id",
            "order": "asc",
        }
        if since is not None:
            params["modified_after"] = since.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")
            params["dates_are_gmt"] = "true"
        if mode == "inventory_only":
            params["_fields"] = INVENTORY_FIELDS
        data, response = get_json(
            "woocommerce products", _url(connection, "/products"), params=params, headers=_auth(connection)
        )
        if not isinstance(data, list):
            raise SourceError("woocommerce products: the answer is not a list of products", transient=False)
        products, skipped = [], []
        for item in data:
            try:
                products.append(self._product(connection, item))
            except ValueError as exc:
                skipped.append(Skipped(external_id=_id_of(item), reason=str(exc)))
        try:
            total = int(response.headers.get("X-WP-TotalPages", ""))
        except ValueError:
            total = page + 1 if len(data) >= settings.PRODUCT_SYNC_PAGE_SIZE else page
        return Page(products=products, next_cursor=str(page + 1) if page < total else None, skipped=skipped)

    def parse_webhook(self, connection: Connection, headers: dict[str, str], payload: Any) -> list[SourceProduct]:
        """A ``product.created/updated/restored`` delivery carries the product as the REST API shows it."""
        if not isinstance(payload, dict) or "id" not in payload:
            raise ValueError("not a WooCommerce product payload")
        return [self._product(connection, payload)]

    def _product(self, connection: Connection, item: Any) -> SourceProduct:
        if not isinstance(item, dict):
            raise ValueError("not an object")
        pid = _parse.external_id(item.get("id"))
        updated = _parse.timestamp(item.get("date_modified_gmt"), key="date_modified_gmt")
        variants = self._variations(connection, pid) if item.get("type") == "variable" else ()
        status = item.get("status", "publish")
        if status not in STATUSES:
            raise ValueError(f"unknown status {str(status)[:20]!r}")
        return SourceProduct(
            external_id=pid,
            updated_at=updated,
            title=_parse.text(item, "name", limit=500),
            description=_parse.text(item, "description"),
            handle=_parse.text(item, "slug", limit=255),
            status=STATUSES[status],
            price=_parse.price(item.get("price")),
            currency=connection.currency,
            inventory_quantity=_parse.quantity(item.get("stock_quantity"), key="stock_quantity"),
            categories=_parse.categories(item.get("categories")),
            variants=variants,
        )

    def _variations(self, connection: Connection, product_id: str) -> tuple[SourceVariant, ...]:
        found: list[SourceVariant] = []
        page = 1
        while True:
            params = {"per_page": 100, "page": page}
            data, response = get_json(
                "woocommerce variations",
                _url(connection, f"/products/{product_id}/variations"),
                params=params,
                headers=_auth(connection),
            )
            if not isinstance(data, list):
                raise ValueError("its variations are not a list")
            for item in data:
                if not isinstance(item, dict):
                    raise ValueError("a variation is not an object")
                options = [str(a.get("option", "")) for a in item.get("attributes") or [] if isinstance(a, dict)]
                found.append(
                    SourceVariant(
                        external_id=_parse.external_id(item.get("id")),
                        sku=_parse.text(item, "sku", limit=255),
                        title=" / ".join(o for o in options if o)[:500],
                        price=_parse.price(item.get("price")),
                        inventory_quantity=_parse.quantity(item.get("stock_quantity"), key="stock_quantity"),
                    )
                )
            try:
                total = int(response.headers.get("X-WP-TotalPages", "1"))
            except ValueError:
                total = 1
            if page >= total:
                return tuple(found)
            page += 1


def _url(connection: Connection, path: str) -> str:
    require_secure(connection.base_url, what="woocommerce")
    return connection.base_url.rstrip("/") + API + path


def _auth(connection: Connection) -> dict[str, str]:
    key = connection.credentials.get("consumer_key")
    secret = connection.credentials.get("consumer_secret")
    if not key or not secret:
        raise SourceAuthError("woocommerce: the connection has no consumer_key/consumer_secret")
    token = base64.b64encode(f"{key}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _id_of(item: Any) -> str:
    value = item.get("id") if isinstance(item, dict) else None
    return str(value)[:255] if value is not None else "?"


SOURCE = WooCommerceSource()
