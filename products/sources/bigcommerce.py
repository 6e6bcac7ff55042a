"""BigCommerce: the catalog v3 REST API (``/stores/{store_hash}/v3/catalog/products``).

Pagination is by id, not by page number: each page asks for ``sort=id&direction=asc`` and
``id:greater=<the last id of the page before>`` (the cursor), and ``meta.pagination`` says
whether more follow. Page numbers over a listing that changes during the run skip a product
for every one deleted before the current page (and a delta's ``date_modified`` order moves a
product edited mid-run to the end); an id cursor does neither, and a killed run resumes right
after its last saved page. A delta adds ``date_modified:min=<since, UTC ISO 8601>``.

Categories: products carry category ids; their names come from ``/v3/catalog/categories``
(``id:in=…``), one extra call per page that has categories. Status: ``is_visible`` false →
``draft``, else ``active``. The currency is the connection's (BigCommerce prices are in the
store's default currency). The API origin is the connection's base URL, or
``BIGCOMMERCE_API_URL`` (``https://api.bigcommerce.com``) when it is blank.

Webhooks carry only ids (``{"scope": "store/product/updated", "data": {"type": "product",
"id": 123}}``): ``parse_webhook`` fetches that product. ``store/product/deleted`` gives a
product with only ``external_id``, ``updated_at`` and ``status="archived"`` meaningful.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from decimal import Decimal
from typing import Any

from django.conf import settings

from broxiva import http
from broxiva.ratelimit import retry_after_seconds
from products.sources import _fields as fields
from products.sources import base
from products.sources.base import (
    Connection,
    Mode,
    Page,
    Skipped,
    SourceAuthError,
    SourceCategory,
    SourceError,
    SourceProduct,
    SourceThrottled,
    SourceVariant,
)

logger = logging.getLogger(__name__)

STORE_HASH = re.compile(r"[A-Za-z0-9]{1,64}")
FETCH_SCOPES = (
    "store/product/created",
    "store/product/updated",
    "store/product/inventory/updated",
    "store/product/inventory/order/updated",
)
DELETE_SCOPE = "store/product/deleted"
# A 429 with no usable reset header: BigCommerce's window is 30 s at most.
DEFAULT_RETRY_AFTER = 30.0


class BigCommerceSource(base.Source):
    name = "bigcommerce"

    def fetch_page(self, connection: Connection, *, mode: Mode, since: dt.datetime | None, cursor: str | None) -> Page:
        params: dict[str, str] = {
            "include": "variants",
            "limit": str(int(settings.BIGCOMMERCE_PAGE_SIZE)),
            "sort": "id",
            "direction": "asc",
        }
        if cursor is not None:
            if not cursor.isdigit():
                raise SourceError(f"BigCommerce: cursor {cursor[:40]!r} is not a product id", transient=False)
            params["id:greater"] = cursor
        if since is not None:
            params["date_modified:min"] = fields.utc_iso(since, z=False)
        if mode == "inventory_only":
            # id always comes back; variants come whole with include=variants.
            params["include_fields"] = "inventory_level,date_modified"
        body = _get(connection, "/catalog/products", params)
        items = body.get("data")
        meta = body.get("meta")
        pagination = meta.get("pagination") if isinstance(meta, dict) else None
        if not isinstance(items, list) or not isinstance(pagination, dict):
            raise SourceError(
                "BigCommerce: the response is not a product listing (no data list and meta.pagination)",
                transient=False,
            )
        names = {} if mode == "inventory_only" else _category_names(connection, items)
        products: list[SourceProduct] = []
        skipped: list[Skipped] = []
        for item in items:
            try:
                products.append(_product(item, mode=mode, currency=connection.currency, names=names))
            except fields.Malformed as exc:
                skipped.append(Skipped(external_id=_raw_id(item), reason=str(exc)))
                logger.warning(
                    "bigcommerce connection=%s skipped product id=%s: %s", connection.id, _raw_id(item) or "?", exc
                )
        return Page(products=products, next_cursor=_next_cursor(items, pagination), skipped=skipped)

    def parse_webhook(self, connection: Connection, headers: dict[str, str], payload: Any) -> list[SourceProduct]:
        """Fetch the product a ``store/product/*`` webhook names (its body carries only the id)."""
        if not isinstance(payload, dict):
            raise ValueError("BigCommerce webhook body is not a JSON object")
        scope = payload.get("scope")
        data = payload.get("data")
        if scope not in (*FETCH_SCOPES, DELETE_SCOPE):
            raise ValueError(f"BigCommerce webhook scope {str(scope)[:60]!r} is not a product event")
        if not isinstance(data, dict) or data.get("type") not in (None, "product"):
            raise ValueError("BigCommerce webhook data is not a product")
        raw_id = data.get("id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, (int, str)) or not str(raw_id).isdigit():
            raise ValueError("BigCommerce webhook data has no numeric product id")
        producer = payload.get("producer")
        store_hash = (connection.credentials or {}).get("store_hash")
        if isinstance(producer, str) and isinstance(store_hash, str) and producer != f"stores/{store_hash}":
            raise ValueError("BigCommerce webhook comes from another store than this connection's")
        if scope == DELETE_SCOPE:
            stamp = payload.get("created_at")
            when = (
                dt.datetime.fromtimestamp(int(stamp), tz=dt.UTC)
                if isinstance(stamp, int) and not isinstance(stamp, bool) and 0 < stamp < 2**35
                else dt.datetime.now(dt.UTC)
            )
            return [SourceProduct(external_id=str(raw_id), updated_at=when, status="archived")]
        body = _get(connection, f"/catalog/products/{raw_id}", {"include": "variants"}, missing_ok=True)
        if body is None:  # deleted since the event: its store/product/deleted event follows
            return []
        item = body.get("data")
        if not isinstance(item, dict):
            raise SourceError("BigCommerce: the product response has no data object", transient=False)
        names = _category_names(connection, [item])
        try:
            return [_product(item, mode="delta", currency=connection.currency, names=names)]
        except fields.Malformed as exc:
            raise ValueError(f"BigCommerce product {raw_id}: {exc}") from None


# --- parsing ----------------------------------------------------------------------------------


def _product(item: Any, *, mode: Mode, currency: str, names: dict[int, str]) -> SourceProduct:
    if not isinstance(item, dict):
        raise fields.Malformed("product is not a JSON object")
    raw_id = item.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, int) or raw_id <= 0:
        raise fields.Malformed(f"id {str(raw_id)[:30]!r} is not a product id")
    updated_at = fields.required_time(item.get("date_modified"), "date_modified")
    inventory = fields.quantity(item.get("inventory_level"), "inventory_level")
    variants = _variants(item.get("variants"), inventory_only=mode == "inventory_only")
    if mode == "inventory_only":
        return SourceProduct(
            external_id=str(raw_id), updated_at=updated_at, inventory_quantity=inventory, variants=variants
        )
    visible = item.get("is_visible", True)
    if not isinstance(visible, bool):
        raise fields.Malformed("is_visible is not true or false")
    custom_url = item.get("custom_url")
    url = custom_url.get("url") if isinstance(custom_url, dict) else None
    return SourceProduct(
        external_id=str(raw_id),
        updated_at=updated_at,
        title=fields.text(item.get("name"), "name", required=True),
        description=fields.text(item.get("description"), "description"),
        handle=fields.text(url, "custom_url.url").strip("/"),
        status="active" if visible else "draft",
        price=fields.price(item.get("price"), "price"),
        currency=currency,
        inventory_quantity=inventory,
        categories=_categories(item.get("categories"), names),
        variants=variants,
    )


def _variants(value: Any, *, inventory_only: bool) -> tuple[SourceVariant, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fields.Malformed("variants is not a list")
    variants = []
    for position, item in enumerate(value, 1):
        where = f"variant {position}"
        raw_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(raw_id, bool) or not isinstance(raw_id, int):
            raise fields.Malformed(f"{where} has no numeric id")
        quantity = fields.quantity(item.get("inventory_level"), f"{where} inventory_level")
        if inventory_only:
            variants.append(SourceVariant(external_id=str(raw_id), inventory_quantity=quantity))
            continue
        # A variant's own price is null when it sells at the product's; calculated_price is what applies.
        own = item.get("price")
        variants.append(
            SourceVariant(
                external_id=str(raw_id),
                sku=fields.text(item.get("sku"), f"{where} sku"),
                title=_option_title(item.get("option_values")),
                price=fields.price(own if own is not None else item.get("calculated_price"), f"{where} price"),
                inventory_quantity=quantity,
            )
        )
    return tuple(variants)


def _option_title(values: Any) -> str:
    """Return "Red / Large" from a variant's ``option_values`` (a base variant has none)."""
    if not isinstance(values, list):
        return ""
    labels = [v.get("label") for v in values if isinstance(v, dict)]
    return " / ".join(label for label in labels if isinstance(label, str) and label)


def _categories(value: Any, names: dict[int, str]) -> tuple[SourceCategory, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or any(isinstance(c, bool) or not isinstance(c, int) for c in value):
        raise fields.Malformed("categories is not a list of category ids")
    return tuple(SourceCategory(external_id=str(c), name=names.get(c) or f"Category {c}") for c in value)


def _raw_id(item: Any) -> str:
    value = item.get("id") if isinstance(item, dict) else None
    return str(value)[:100] if value is not None else ""


def _next_cursor(items: list[Any], pagination: dict[str, Any]) -> str | None:
    """Return the largest id of the page when ``meta.pagination`` says more follow, else None."""
    total, count = pagination.get("total_pages"), pagination.get("current_page")
    links = pagination.get("links")
    more = (isinstance(total, int) and isinstance(count, int) and total > count) or (
        isinstance(links, dict) and bool(links.get("next"))
    )
    if not more:
        return None
    ids = [i.get("id") for i in items if isinstance(i, dict)]
    ids = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
    if not ids:
        raise SourceError("BigCommerce: more pages announced but no product id to continue from", transient=False)
    return str(max(ids))


# --- calls ------------------------------------------------------------------------------------


def _category_names(connection: Connection, items: list[Any]) -> dict[int, str]:
    wanted = sorted(
        {
            c
            for item in items
            if isinstance(item, dict) and isinstance(item.get("categories"), list)
            for c in item["categories"]
            if isinstance(c, int) and not isinstance(c, bool)
        }
    )
    names: dict[int, str] = {}
    limit = 250  # the API's largest page; a product page rarely names more categories than this
    for start in range(0, len(wanted), limit):
        chunk = wanted[start : start + limit]
        body = _get(
            connection,
            "/catalog/categories",
            {"id:in": ",".join(map(str, chunk)), "limit": str(limit), "include_fields": "id,name"},
        )
        data = body.get("data") if isinstance(body, dict) else None
        for category in data if isinstance(data, list) else []:
            if (
                isinstance(category, dict)
                and isinstance(category.get("id"), int)
                and isinstance(category.get("name"), str)
            ):
                names[category["id"]] = category["name"]
    return names


def _api_root(connection: Connection) -> str:
    credentials = connection.credentials or {}
    store_hash = credentials.get("store_hash")
    if not isinstance(store_hash, str) or not STORE_HASH.fullmatch(store_hash):
        raise SourceAuthError("BigCommerce: the connection's store_hash is missing or not letters and digits")
    origin = (connection.base_url or settings.BIGCOMMERCE_API_URL).rstrip("/")
    return f"{origin}/stores/{store_hash}/v3"


def _get(connection: Connection, path: str, params: dict[str, str], *, missing_ok: bool = False) -> Any:
    token = (connection.credentials or {}).get("access_token")
    if not isinstance(token, str) or not token:
        raise SourceAuthError("BigCommerce: the connection has no access_token")
    url = _api_root(connection) + path
    try:
        # No redirects: X-Auth-Token is not a header the client drops when the host changes.
        resp = http.get(
            url,
            params=params,
            untrusted=True,
            max_redirects=0,
            headers={"X-Auth-Token": token, "Accept": "application/json"},
            timeout=float(settings.PRODUCT_SYNC_HTTP_TIMEOUT),
            max_bytes=int(settings.PRODUCT_SYNC_MAX_PAGE_BYTES),
        )
    except http.HttpError as exc:
        raise fields.from_http_error("BigCommerce", exc, connection) from None
    body = fields.parse_json(resp)
    if resp.status in (401, 403):
        raise SourceAuthError(f"BigCommerce: HTTP {resp.status}: {_message(body, connection) or 'access refused'}")
    if resp.status == 429:
        raise SourceThrottled("BigCommerce: HTTP 429 Too Many Requests", retry_after=_retry_after(resp))
    if resp.status == 404 and missing_ok:
        return None
    if 300 <= resp.status < 400:
        raise SourceError(f"BigCommerce: HTTP {resp.status} redirect from the API", transient=False)
    if resp.status >= 400:
        raise SourceError(
            f"BigCommerce: HTTP {resp.status}: {_message(body, connection) or 'request failed'}",
            transient=http.is_transient_status(resp.status),
        )
    if not isinstance(body, dict):
        raise SourceError(
            f"BigCommerce: the response is not a JSON object (HTTP {resp.status}, {len(resp.body)} bytes)",
            transient=False,
        )
    return body


def _retry_after(resp: http.Response) -> float:
    """Seconds to wait: ``X-Rate-Limit-Time-Reset-Ms`` (BigCommerce's own), else ``Retry-After``."""
    reset = fields.number(resp.headers.get("X-Rate-Limit-Time-Reset-Ms"))
    if reset is not None and reset >= 0:
        return min(float(reset / Decimal(1000)), 3600.0)
    return retry_after_seconds(resp.headers.get("Retry-After"), default=DEFAULT_RETRY_AFTER)


def _message(body: Any, connection: Connection) -> str:
    """Return BigCommerce's error text: v3 ``{"title", "errors"}`` or v2 ``[{"message"}]``."""
    if isinstance(body, list):
        texts = [b.get("message") for b in body if isinstance(b, dict)]
        return fields.scrub("; ".join(str(t) for t in texts if t), connection)
    if not isinstance(body, dict):
        return ""
    parts = [str(body["title"])] if body.get("title") else []
    errors = body.get("errors")
    if isinstance(errors, dict):
        parts += [f"{k}: {v}" for k, v in errors.items()]
    elif isinstance(errors, list):
        parts += [str(e) for e in errors]
    return fields.scrub("; ".join(parts), connection)


SOURCE = BigCommerceSource()
