"""Shopify: the GraphQL Admin API's ``products`` connection, and REST-shaped product webhooks.

One ``POST {shop}/admin/api/{SHOPIFY_API_VERSION}/graphql.json`` per page, cursor-paginated
with ``sortKey: UPDATED_AT`` (a delta adds ``query: "updated_at:>'…'"``), so the ``endCursor``
we return lets a killed run resume right after its last saved page.

Ids: Shopify's GraphQL ids are ``gid://shopify/Product/123``; we keep the number (``"123"``)
because webhooks are REST-shaped and carry only the number, and both paths must name the same
product. Categories: the product type (``productType`` / ``product_type``), which both paths
carry; collections are not in webhooks and would triple each query's cost. ``price`` is the
lowest variant price. A ``products/delete`` webhook gives a product with only ``external_id``,
``updated_at`` and ``status="archived"`` meaningful.

Throttling: every response reports ``extensions.cost.throttleStatus`` (Shopify's leaky
bucket). We remember it per shop and, before the next query, wait until the bucket holds that
query's cost (at most ``SHOPIFY_MAX_THROTTLE_WAIT`` seconds; longer → ``SourceThrottled``, which
defers the job). A ``THROTTLED`` error still gets through when another app drains the same
bucket: it becomes ``SourceThrottled`` with the wait its cost figures give.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
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

# Shopify refuses a query whose requested cost passes this (MAX_COST_EXCEEDED).
MAX_QUERY_COST = 1000
PRODUCT_GID = re.compile(r"gid://shopify/Product/([0-9]+)")
VARIANT_GID = re.compile(r"gid://shopify/ProductVariant/([0-9]+)")
# UNLISTED (2025-04 and later) is sold but hidden from search and collections: still active here.
STATUSES = {"ACTIVE": "active", "DRAFT": "draft", "ARCHIVED": "archived", "UNLISTED": "active"}
AUTH_CODES = {"ACCESS_DENIED", "UNAUTHORIZED", "FORBIDDEN"}
TRANSIENT_CODES = {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"}
# When a THROTTLED answer carries no usable cost figures: a bucket restores in about this long.
DEFAULT_THROTTLE_WAIT = 1.0

FULL_FIELDS = """
      id
      title
      descriptionHtml
      handle
      status
      productType
      updatedAt
      totalInventory
      variants(first: $variants) { pageInfo { hasNextPage } nodes { id sku title price inventoryQuantity } }"""
INVENTORY_FIELDS = """
      id
      updatedAt
      totalInventory
      variants(first: $variants) { pageInfo { hasNextPage } nodes { id inventoryQuantity } }"""
QUERY = """query Products($first: Int!, $after: String, $query: String, $variants: Int!) {
  shop { currencyCode }
  products(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {%s
    }
  }
}"""


def estimated_cost(*, first: int, variants: int) -> int:
    """Return Shopify's requested cost of one page query, before any answer tells us.

    A connection costs 2 + ``first`` × its node's cost; an object costs 1, scalars 0: so
    ``shop`` 1, each product 1 + its variants connection (2 + ``variants``).
    """
    return 1 + 2 + first * (1 + 2 + variants)


def page_size() -> int:
    """Return ``SHOPIFY_PAGE_SIZE`` cut so that the page query stays under ``MAX_QUERY_COST``."""
    variants = int(settings.SHOPIFY_VARIANTS_PER_PRODUCT)
    fits = max(1, (MAX_QUERY_COST - 3) // (3 + variants))
    return max(1, min(int(settings.SHOPIFY_PAGE_SIZE), fits))


@dataclass
class Bucket:
    """The last ``throttleStatus`` a shop reported, and when (``clock`` time)."""

    maximum: float
    available: float
    restore_rate: float
    at: float
    last_cost: float

    def wait_for(self, cost: float, now: float) -> float:
        """Return the seconds until the bucket, refilling since ``at``, holds ``cost`` points."""
        available = min(self.maximum, self.available + self.restore_rate * max(0.0, now - self.at))
        need = min(cost, self.maximum)
        if available >= need or self.restore_rate <= 0:
            return 0.0
        return (need - available) / self.restore_rate


class ShopifySource(base.Source):
    name = "shopify"

    def __init__(
        self, *, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # Injected so tests check the wait without waiting (and without timing anything).
        self.sleep = sleep
        self.clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    # --- listing ---------------------------------------------------------------------------

    def fetch_page(self, connection: Connection, *, mode: Mode, since: dt.datetime | None, cursor: str | None) -> Page:
        first = page_size()
        variants = int(settings.SHOPIFY_VARIANTS_PER_PRODUCT)
        variables: dict[str, Any] = {"first": first, "after": cursor, "variants": variants, "query": None}
        if since is not None:
            variables["query"] = f"updated_at:>'{fields.utc_iso(since)}'"
        query = QUERY % (INVENTORY_FIELDS if mode == "inventory_only" else FULL_FIELDS)
        self._wait_for_bucket(connection, estimated_cost(first=first, variants=variants))
        body = self._post(connection, {"query": query, "variables": variables})
        data = body.get("data")
        products = data.get("products") if isinstance(data, dict) else None
        nodes = products.get("nodes") if isinstance(products, dict) else None
        info = products.get("pageInfo") if isinstance(products, dict) else None
        if not isinstance(nodes, list) or not isinstance(info, dict):
            raise SourceError(
                "Shopify: the response is not a product listing (no data.products.nodes)", transient=False
            )
        shop = data.get("shop") if isinstance(data.get("shop"), dict) else {}
        currency = shop.get("currencyCode") if isinstance(shop.get("currencyCode"), str) else connection.currency
        page = Page(products=[], next_cursor=None)
        for index, node in enumerate(nodes):
            try:
                if mode == "inventory_only":
                    page.products.append(_inventory_product(node))
                else:
                    page.products.append(_graphql_product(node, currency=currency))
            except fields.Malformed as exc:
                page.skipped.append(Skipped(external_id=_node_id(node), reason=str(exc)))
                logger.warning(
                    "shopify connection=%s skipped product #%d id=%s: %s",
                    connection.id,
                    index,
                    _node_id(node) or "?",
                    exc,
                )
        end = info.get("endCursor")
        if info.get("hasNextPage") is True:
            if not isinstance(end, str) or not end:
                raise SourceError("Shopify: hasNextPage without an endCursor", transient=False)
            return Page(products=page.products, next_cursor=end, skipped=page.skipped)
        return page

    # --- webhooks --------------------------------------------------------------------------

    def parse_webhook(self, connection: Connection, headers: dict[str, str], payload: Any) -> list[SourceProduct]:
        """Read a ``products/create``, ``products/update`` or ``products/delete`` body (REST-shaped)."""
        lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
        topic = lowered.get("x-shopify-topic", "")
        if topic and topic not in ("products/create", "products/update", "products/delete"):
            raise ValueError(f"Shopify webhook topic {topic!r} is not a product event")
        if not isinstance(payload, dict):
            raise ValueError("Shopify webhook body is not a JSON object")
        raw_id = payload.get("id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, (int, str)) or not str(raw_id).isdigit():
            raise ValueError("Shopify webhook body has no numeric product id")
        if topic == "products/delete" or (not topic and set(payload) == {"id"}):
            when = fields.parse_time(lowered.get("x-shopify-triggered-at")) or dt.datetime.now(dt.UTC)
            return [SourceProduct(external_id=str(raw_id), updated_at=when, status="archived")]
        try:
            return [_rest_product(payload, currency=connection.currency)]
        except fields.Malformed as exc:
            raise ValueError(f"Shopify webhook product {raw_id}: {exc}") from None

    # --- the call --------------------------------------------------------------------------

    def _wait_for_bucket(self, connection: Connection, estimate: int) -> None:
        with self._lock:
            bucket = self._buckets.get(_shop_key(connection))
        if bucket is None:
            return
        cost = bucket.last_cost or estimate
        wait = bucket.wait_for(cost, self.clock())
        if wait <= 0:
            return
        if wait > float(settings.SHOPIFY_MAX_THROTTLE_WAIT):
            raise SourceThrottled(f"Shopify: query cost {cost:g} needs {wait:.1f}s of bucket refill", retry_after=wait)
        logger.info("shopify connection=%s waiting %.2fs for %g cost points", connection.id, wait, cost)
        self.sleep(wait)

    def _remember(self, connection: Connection, cost: Any) -> tuple[float, float, float] | None:
        """Store the response's throttle status; return ``(requested cost, available, rate)`` or None."""
        if not isinstance(cost, dict) or not isinstance(cost.get("throttleStatus"), dict):
            return None
        status = cost["throttleStatus"]
        numbers = [fields.number(status.get(k)) for k in ("maximumAvailable", "currentlyAvailable", "restoreRate")]
        requested = fields.number(cost.get("requestedQueryCost"))
        if any(n is None for n in numbers):
            return None
        maximum, available, rate = (float(n) for n in numbers)  # type: ignore[arg-type]
        actual = fields.number(cost.get("actualQueryCost"))
        with self._lock:
            self._buckets[_shop_key(connection)] = Bucket(
                maximum=maximum,
                available=available,
                restore_rate=rate,
                at=self.clock(),
                # The next page asks for what this one asked (same query); refunds come after.
                last_cost=float(requested if requested is not None else actual or 0),
            )
        return float(requested or 0), available, rate

    def _post(self, connection: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        token = (connection.credentials or {}).get("access_token")
        if not isinstance(token, str) or not token:
            raise SourceAuthError("Shopify: the connection has no access_token")
        url = f"{connection.base_url.rstrip('/')}/admin/api/{settings.SHOPIFY_API_VERSION}/graphql.json"
        try:
            # Redirects are not followed: a POST would turn into a GET, and our token header is not
            # one the client strips when a redirect changes host.
            resp = http.post(
                url,
                json=payload,
                untrusted=True,
                max_redirects=0,
                headers={"X-Shopify-Access-Token": token, "Accept": "application/json"},
                timeout=float(settings.PRODUCT_SYNC_HTTP_TIMEOUT),
                max_bytes=int(settings.PRODUCT_SYNC_MAX_PAGE_BYTES),
            )
        except http.HttpError as exc:
            raise fields.from_http_error("Shopify", exc, connection) from None
        body = fields.parse_json(resp)
        if isinstance(body, dict):
            throttle = self._remember(
                connection,
                (body.get("extensions") or {}).get("cost") if isinstance(body.get("extensions"), dict) else None,
            )
        else:
            throttle = None
        if resp.status in (401, 403):
            raise SourceAuthError(f"Shopify: HTTP {resp.status}: {_message(body, connection) or 'access refused'}")
        if resp.status == 429:
            raise SourceThrottled(
                "Shopify: HTTP 429 Too Many Requests",
                retry_after=retry_after_seconds(resp.headers.get("Retry-After"), default=2),
            )
        if 300 <= resp.status < 400:
            raise SourceError(
                f"Shopify: HTTP {resp.status} redirect: use the shop's myshopify.com address", transient=False
            )
        if resp.status >= 400:
            raise SourceError(
                f"Shopify: HTTP {resp.status}: {_message(body, connection) or 'request failed'}",
                transient=http.is_transient_status(resp.status),
            )
        if not isinstance(body, dict):
            raise SourceError(
                f"Shopify: the response is not a JSON object (HTTP {resp.status}, {len(resp.body)} bytes)",
                transient=False,
            )
        errors = body.get("errors")
        if errors:
            raise _graphql_error(errors, throttle, connection)
        return body


# --- parsing ----------------------------------------------------------------------------------


def _graphql_product(node: Any, *, currency: str) -> SourceProduct:
    if not isinstance(node, dict):
        raise fields.Malformed("product is not a JSON object")
    external_id = _gid(node.get("id"), PRODUCT_GID, "id")
    status = node.get("status")
    if status not in STATUSES:
        raise fields.Malformed(f"unknown status {str(status)[:20]!r}")
    variants = _graphql_variants(node.get("variants"))
    return SourceProduct(
        external_id=external_id,
        updated_at=fields.required_time(node.get("updatedAt"), "updatedAt"),
        title=fields.text(node.get("title"), "title", required=True),
        description=fields.text(node.get("descriptionHtml"), "descriptionHtml"),
        handle=fields.text(node.get("handle"), "handle"),
        status=STATUSES[status],
        price=_lowest(variants),
        currency=currency,
        inventory_quantity=fields.quantity(node.get("totalInventory"), "totalInventory"),
        categories=_categories(node.get("productType"), "productType"),
        variants=variants,
    )


def _inventory_product(node: Any) -> SourceProduct:
    if not isinstance(node, dict):
        raise fields.Malformed("product is not a JSON object")
    return SourceProduct(
        external_id=_gid(node.get("id"), PRODUCT_GID, "id"),
        updated_at=fields.required_time(node.get("updatedAt"), "updatedAt"),
        inventory_quantity=fields.quantity(node.get("totalInventory"), "totalInventory"),
        variants=_graphql_variants(node.get("variants"), inventory_only=True),
    )


def _graphql_variants(connection: Any, *, inventory_only: bool = False) -> tuple[SourceVariant, ...]:
    nodes = connection.get("nodes") if isinstance(connection, dict) else None
    if not isinstance(nodes, list):
        raise fields.Malformed("variants are missing or not a list")
    info = connection.get("pageInfo")
    if isinstance(info, dict) and info.get("hasNextPage") is True:
        # Saving part of the variants would read as the others being gone: skip, visibly, instead.
        raise fields.Malformed(
            f"has more than {len(nodes)} variants (raise SHOPIFY_VARIANTS_PER_PRODUCT to read them all)"
        )
    variants = []
    for position, node in enumerate(nodes, 1):
        if not isinstance(node, dict):
            raise fields.Malformed(f"variant {position} is not a JSON object")
        where = f"variant {position}"
        external_id = _gid(node.get("id"), VARIANT_GID, f"{where} id")
        quantity = fields.quantity(node.get("inventoryQuantity"), f"{where} inventoryQuantity")
        if inventory_only:
            variants.append(SourceVariant(external_id=external_id, inventory_quantity=quantity))
            continue
        variants.append(
            SourceVariant(
                external_id=external_id,
                sku=fields.text(node.get("sku"), f"{where} sku"),
                title=fields.text(node.get("title"), f"{where} title"),
                price=fields.price(node.get("price"), f"{where} price"),
                inventory_quantity=quantity,
            )
        )
    return tuple(variants)


def _rest_product(payload: dict[str, Any], *, currency: str) -> SourceProduct:
    status = payload.get("status", "active")
    if not isinstance(status, str) or status.upper() not in STATUSES:
        raise fields.Malformed(f"unknown status {str(status)[:20]!r}")
    raw_variants = payload.get("variants", [])
    if not isinstance(raw_variants, list):
        raise fields.Malformed("variants is not a list")
    variants = []
    for position, item in enumerate(raw_variants, 1):
        where = f"variant {position}"
        if not isinstance(item, dict) or isinstance(item.get("id"), bool) or not str(item.get("id", "")).isdigit():
            raise fields.Malformed(f"{where} has no numeric id")
        variants.append(
            SourceVariant(
                external_id=str(item["id"]),
                sku=fields.text(item.get("sku"), f"{where} sku"),
                title=fields.text(item.get("title"), f"{where} title"),
                price=fields.price(item.get("price"), f"{where} price"),
                inventory_quantity=fields.quantity(item.get("inventory_quantity"), f"{where} inventory_quantity"),
            )
        )
    quantities = [v.inventory_quantity for v in variants if v.inventory_quantity is not None]
    return SourceProduct(
        external_id=str(payload["id"]),
        updated_at=fields.required_time(payload.get("updated_at"), "updated_at"),
        title=fields.text(payload.get("title"), "title", required=True),
        description=fields.text(payload.get("body_html"), "body_html"),
        handle=fields.text(payload.get("handle"), "handle"),
        status=STATUSES[status.upper()],
        price=_lowest(tuple(variants)),
        currency=currency,
        # REST payloads have no totalInventory; it is the variants' sum, as Shopify computes it.
        inventory_quantity=sum(quantities) if quantities else None,
        categories=_categories(payload.get("product_type"), "product_type"),
        variants=tuple(variants),
    )


def _gid(value: Any, pattern: re.Pattern[str], what: str) -> str:
    match = pattern.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise fields.Malformed(f"{what} {str(value)[:60]!r} is not a Shopify id of the expected kind")
    return match.group(1)


def _node_id(node: Any) -> str:
    value = node.get("id") if isinstance(node, dict) else None
    match = PRODUCT_GID.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else (str(value)[:100] if value is not None else "")


def _lowest(variants: tuple[SourceVariant, ...]) -> Decimal | None:
    prices = [v.price for v in variants if v.price is not None]
    return min(prices) if prices else None


def _categories(value: Any, what: str) -> tuple[SourceCategory, ...]:
    if value is None or value == "":
        return ()
    if not isinstance(value, str):
        raise fields.Malformed(f"{what} is not text")
    name = value.strip()
    return (SourceCategory(external_id=name, name=name),) if name else ()


# --- errors -----------------------------------------------------------------------------------


def _shop_key(connection: Connection) -> str:
    # Shopify's bucket is per app and shop: two connections to one shop share it.
    return connection.base_url.rstrip("/").lower()


def _message(body: Any, connection: Connection) -> str:
    """Return Shopify's error text: ``{"errors": "…"}``, ``{"errors": [{"message": …}]}`` or a map."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, str):
        return fields.scrub(errors, connection)
    if isinstance(errors, list):
        texts = [e.get("message") if isinstance(e, dict) else e for e in errors]
        return fields.scrub("; ".join(str(t) for t in texts if t), connection)
    if isinstance(errors, dict):
        return fields.scrub("; ".join(f"{k}: {v}" for k, v in errors.items()), connection)
    return ""


def _graphql_error(errors: Any, throttle: tuple[float, float, float] | None, connection: Connection) -> SourceError:
    items = errors if isinstance(errors, list) else [errors]
    codes = {
        str((e.get("extensions") or {}).get("code", ""))
        for e in items
        if isinstance(e, dict) and isinstance(e.get("extensions"), dict)
    }
    text = _message({"errors": errors}, connection) or "GraphQL error"
    if "THROTTLED" in codes:
        wait = DEFAULT_THROTTLE_WAIT
        if throttle is not None:
            requested, available, rate = throttle
            if rate > 0 and requested > available:
                wait = (requested - available) / rate
        return SourceThrottled(f"Shopify: throttled ({text})", retry_after=max(wait, 0.1))
    if codes & AUTH_CODES:
        return SourceAuthError(f"Shopify: {text}")
    return SourceError(f"Shopify: {text}", transient=bool(codes & TRANSIENT_CODES))


SOURCE = ShopifySource()
