"""A local Shopify GraphQL Admin API on loopback, speaking its wire format, good and broken.

``POST /admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token`` answers the
``products(first:, after:, sortKey: UPDATED_AT, query:)`` connection from ``products`` (GraphQL
node-shaped dicts; a node may be deliberately broken), honours ``updated_at:>'…'``, returns only
the fields the query text names, and reports ``extensions.cost`` with a ``throttleStatus``
bucket that each query drains (no refill: a test sets ``available`` to what it needs). A query
whose requested cost passes the bucket gets Shopify's ``THROTTLED`` answer.

It is not a GraphQL engine: it reads the variables and checks field names in the query text,
which is enough to prove what the client asks for.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TOKEN = "shpat_0123456789abcdef0123456789abcdef"
VERSION = "2025-10"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


def product(
    number: int,
    *,
    updated: str = "2026-01-10T12:00:00Z",
    title: str | None = None,
    status: str = "ACTIVE",
    product_type: str = "Shoes",
    variants: list[dict[str, Any]] | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    """Return a product node as the GraphQL Admin API has it (every field the client may ask)."""
    if variants is None:
        variants = [
            variant(number * 10 + 1, sku=f"SKU-{number}-S", title="Small", price="19.99", quantity=3),
            variant(number * 10 + 2, sku=f"SKU-{number}-L", title="Large", price="24.50", quantity=4),
        ]
    return {
        "id": f"gid://shopify/Product/{number}",
        "title": title if title is not None else f"Product {number}",
        "descriptionHtml": f"<p>Description of <strong>product {number}</strong></p>",
        "handle": f"product-{number}",
        "status": status,
        "productType": product_type,
        "updatedAt": updated,
        "totalInventory": total if total is not None else sum(v["inventoryQuantity"] or 0 for v in variants),
        "variants": {"nodes": variants},
    }


def variant(number: int, *, sku: str, title: str, price: str, quantity: int | None) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/ProductVariant/{number}",
        "sku": sku,
        "title": title,
        "price": price,
        "inventoryQuantity": quantity,
    }


@dataclass
class Canned:
    """One answer to give instead of the listing (an error, a throttle, a broken body)."""

    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class ShopifyServer:
    def __init__(self, server: HTTPServer, *, currency: str = "EUR", available: float = 2000.0) -> None:
        self.server = server
        self.currency = currency
        self.products: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []  # JSON bodies of the GraphQL calls, in order
        self.tokens: list[str | None] = []
        self.canned: list[Canned] = []
        self.maximum, self.available, self.restore_rate = 2000.0, available, 100.0
        server.expect_request(f"/admin/api/{VERSION}/graphql.json", method="POST").respond_with_handler(self._handle)

    @property
    def base_url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def answer_next(self, status: int = 200, body: Any = "", **kwargs: Any) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.canned.append(Canned(status=status, body=text, **kwargs))

    # --- the endpoint --------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        token = request.headers.get("X-Shopify-Access-Token")
        self.tokens.append(token)
        if token != TOKEN:
            return _json({"errors": INVALID_TOKEN}, 401)
        payload = json.loads(request.get_data())
        self.received.append(payload)
        if self.canned:
            canned = self.canned.pop(0)
            return Response(canned.body, status=canned.status, headers=canned.headers, content_type=canned.content_type)
        query, variables = payload["query"], payload.get("variables") or {}
        first, per_product = int(variables["first"]), int(variables.get("variants") or 0)
        requested = 3 + first * (3 + per_product)  # the formula Shopify documents for connections
        if requested > self.available:
            return _json(
                {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": {"cost": self._cost(requested, None)},
                }
            )
        nodes, has_next, end = self._page(first=first, after=variables.get("after"), search=variables.get("query"))
        actual = 3 + sum(
            3 + len(n["variants"]["nodes"]) if isinstance(n, dict) and "variants" in n else 3 for n in nodes
        )
        self.available -= actual
        data = {
            "shop": {"currencyCode": self.currency},
            "products": {
                "pageInfo": {"hasNextPage": has_next, "endCursor": end},
                "nodes": [_select(n, query, per_product) for n in nodes],
            },
        }
        return _json({"data": data, "extensions": {"cost": self._cost(requested, actual)}})

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.maximum,
                "currentlyAvailable": int(self.available),
                "restoreRate": self.restore_rate,
            },
        }

    def _page(self, *, first: int, after: str | None, search: str | None) -> tuple[list[Any], bool, str | None]:
        items = list(self.products)
        if search:
            match = re.fullmatch(r"updated_at:>'([^']+)'", search)
            assert match, f"unexpected search query {search!r}"
            since = _time(match.group(1))
            items = [p for p in items if _time(p["updatedAt"]) > since]
        items.sort(key=_sort_key)  # sortKey: UPDATED_AT, ties by id, as Shopify's cursor does
        if after:
            last = json.loads(base64.b64decode(after))
            items = [p for p in items if _sort_key(p) > tuple(last)]
        page = items[:first]
        end = base64.b64encode(json.dumps(list(_sort_key(page[-1]))).encode()).decode() if page else None
        return page, len(items) > first, end


def _sort_key(node: Any) -> tuple[str, str]:
    return (str(node.get("updatedAt", "")), str(node.get("id", ""))) if isinstance(node, dict) else ("", "")


def _select(node: Any, query: str, first: int) -> Any:
    """Keep only the fields the query names, and ``first`` variants (a broken node goes out as it is)."""
    if not isinstance(node, dict):
        return node
    out = {k: v for k, v in node.items() if re.search(rf"\b{k}\b", query)}
    if isinstance(out.get("variants"), dict) and isinstance(out["variants"].get("nodes"), list):
        # The variant selection is the text after "variants(".
        selection = query[query.index("variants(") :]
        every = out["variants"]["nodes"]
        out["variants"] = {
            "nodes": [
                {k: v for k, v in n.items() if re.search(rf"\b{k}\b", selection)} if isinstance(n, dict) else n
                for n in every[:first]
            ]
        }
        if "pageInfo" in selection:
            out["variants"]["pageInfo"] = {"hasNextPage": len(every) > first}
    return out


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def webhook_product(number: int = 632910392, *, updated: str = "2026-02-01T09:15:00-05:00") -> dict[str, Any]:
    """A ``products/update`` webhook body, REST-shaped, as Shopify sends it."""
    return {
        "id": number,
        "admin_graphql_api_id": f"gid://shopify/Product/{number}",
        "title": "IPod Nano - 8GB",
        "body_html": "<p>It's the small iPod with one very big idea: Video.</p>",
        "vendor": "Apple",
        "product_type": "Cult Products",
        "created_at": "2025-10-01T10:00:00-05:00",
        "handle": "ipod-nano",
        "updated_at": updated,
        "published_at": "2025-10-01T10:00:00-05:00",
        "status": "active",
        "tags": "Emotive, Flash Memory",
        "variants": [
            {
                "id": 808950810,
                "product_id": number,
                "title": "Pink",
                "price": "199.00",
                "sku": "IPOD2008PINK",
                "position": 1,
                "inventory_quantity": 10,
                "admin_graphql_api_id": "gid://shopify/ProductVariant/808950810",
            },
            {
                "id": 49148385,
                "product_id": number,
                "title": "Red",
                "price": "189.00",
                "sku": "IPOD2008RED",
                "position": 2,
                "inventory_quantity": 20,
                "admin_graphql_api_id": "gid://shopify/ProductVariant/49148385",
            },
        ],
    }
