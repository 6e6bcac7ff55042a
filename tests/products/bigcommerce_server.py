"""A local BigCommerce catalog v3 API on loopback, speaking its wire format, good and broken.

``GET /stores/{hash}/v3/catalog/products`` (``include=variants``, ``limit``, ``page``,
``sort``/``direction``, ``id:greater``, ``date_modified:min``, ``include_fields``) answers
``{"data": [...], "meta": {"pagination": {...}}}`` from ``products`` (REST-shaped dicts; a product
may be deliberately broken); ``/catalog/products/{id}`` one product; ``/catalog/categories``
(``id:in``) category names. ``X-Auth-Token`` is checked; ``answer_next`` queues an error.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TOKEN = "bc-token-0123456789abcdefghijklmnopqrstu"
STORE_HASH = "abc123def"
CATEGORIES = {18: "Shop All", 23: "Garden", 24: "Kitchen"}


def product(
    number: int,
    *,
    modified: str = "2026-01-10T12:00:00+00:00",
    name: str | None = None,
    visible: bool = True,
    categories: list[int] | None = None,
    variants: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return a product as ``GET /v3/catalog/products?include=variants`` has it."""
    if variants is None:
        variants = [
            variant(number * 10 + 1, number, sku=f"BC-{number}-S", price=None, level=5, label="Small"),
            variant(number * 10 + 2, number, sku=f"BC-{number}-L", price=27.5, level=6, label="Large"),
        ]
    return {
        "id": number,
        "name": name if name is not None else f"Orbit Terrarium {number}",
        "type": "physical",
        "sku": f"OTS-{number}",
        "description": f"<p>Terrarium number <em>{number}</em></p>",
        "weight": 1,
        "price": 25,
        "calculated_price": 25,
        "categories": [23, 18] if categories is None else categories,
        "brand_id": 0,
        "inventory_level": sum(v["inventory_level"] for v in variants),
        "inventory_tracking": "variant",
        "is_visible": visible,
        "availability": "available",
        "custom_url": {"url": f"/orbit-terrarium-{number}/", "is_customized": False},
        "date_created": "2025-06-01T09:00:00+00:00",
        "date_modified": modified,
        "variants": variants,
    }


def variant(number: int, product_id: int, *, sku: str, price: float | None, level: int, label: str) -> dict[str, Any]:
    return {
        "id": number,
        "product_id": product_id,
        "sku": sku,
        "price": price,
        "calculated_price": 25 if price is None else price,
        "inventory_level": level,
        "option_values": [{"id": number, "label": label, "option_id": 108, "option_display_name": "Size"}],
    }


class BigCommerceServer:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.products: list[dict[str, Any]] = []
        self.categories = dict(CATEGORIES)
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, query parameters)
        self.tokens: list[str | None] = []
        self.canned: list[Response] = []
        server.expect_request(re.compile(rf"^/stores/{STORE_HASH}/v3/.*")).respond_with_handler(self._handle)

    @property
    def base_url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def answer_next(
        self,
        status: int,
        body: Any = "",
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.canned.append(Response(text, status=status, headers=headers or {}, content_type=content_type))

    def product_calls(self) -> list[dict[str, str]]:
        return [params for path, params in self.requests if path.endswith("/catalog/products")]

    # --- the endpoints -------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        token = request.headers.get("X-Auth-Token")
        self.tokens.append(token)
        params = {k: v for k, v in request.args.items()}
        path = request.path.removeprefix(f"/stores/{STORE_HASH}/v3")
        self.requests.append((path, params))
        if token != TOKEN:
            return _json(
                {
                    "status": 401,
                    "title": "The request could not be authenticated: the X-Auth-Token is invalid or revoked.",
                    "type": "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes",
                    "errors": {},
                },
                401,
            )
        if self.canned:
            return self.canned.pop(0)
        if path == "/catalog/products":
            return self._list(params)
        if match := re.fullmatch(r"/catalog/products/([0-9]+)", path):
            found = [p for p in self.products if isinstance(p, dict) and p.get("id") == int(match.group(1))]
            if not found:
                return _json({"status": 404, "title": "The requested product was not found.", "errors": {}}, 404)
            return _json({"data": found[0], "meta": {}})
        if path == "/catalog/categories":
            wanted = {int(i) for i in params.get("id:in", "").split(",") if i}
            data = [{"id": i, "name": n, "parent_id": 0} for i, n in self.categories.items() if i in wanted]
            return _json({"data": data, "meta": {"pagination": _pagination(len(data), len(data), 250, 1)}})
        return _json({"status": 404, "title": "Route not found"}, 404)

    def _list(self, params: dict[str, str]) -> Response:
        assert params.get("include") == "variants", params
        items = list(self.products)
        if "date_modified:min" in params:
            since = dt.datetime.fromisoformat(params["date_modified:min"])
            items = [p for p in items if dt.datetime.fromisoformat(p["date_modified"]) >= since]
        if "id:greater" in params:
            items = [p for p in items if _id(p) > int(params["id:greater"])]
        if params.get("sort") == "id":
            items.sort(key=_id, reverse=params.get("direction") == "desc")
        limit, page = int(params.get("limit", 50)), int(params.get("page", 1))
        chunk = items[(page - 1) * limit : page * limit]
        if "include_fields" in params:
            keep = {"id", "variants", *params["include_fields"].split(",")}
            chunk = [{k: v for k, v in p.items() if k in keep} for p in chunk]
        return _json({"data": chunk, "meta": {"pagination": _pagination(len(items), len(chunk), limit, page)}})


def _id(item: dict[str, Any]) -> int:
    """A product's id for filtering and sorting; a deliberately broken one sorts last."""
    value = item.get("id")
    return value if isinstance(value, int) else 10**9


def _pagination(total: int, count: int, per_page: int, page: int) -> dict[str, Any]:
    pages = max(1, math.ceil(total / per_page))
    links: dict[str, str] = {"current": f"?page={page}&limit={per_page}"}
    if page > 1:
        links["previous"] = f"?page={page - 1}&limit={per_page}"
    if page < pages:
        links["next"] = f"?page={page + 1}&limit={per_page}"
    return {
        "total": total,
        "count": count,
        "per_page": per_page,
        "current_page": page,
        "total_pages": pages,
        "links": links,
    }


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def webhook(
    scope: str = "store/product/updated", product_id: int = 3, *, store_hash: str = STORE_HASH
) -> dict[str, Any]:
    """A BigCommerce webhook body: the event and the product's id only."""
    return {
        "created_at": 1767225600,  # 2026-01-01T00:00:00Z
        "store_id": "1025646",
        "producer": f"stores/{store_hash}",
        "scope": scope,
        "hash": "352e4afc6dd3fc85ea26bfdf3f91852604d57528",
        "data": {"type": "product", "id": product_id},
    }
