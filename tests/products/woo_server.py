"""A local WooCommerce REST v3 shop on loopback, speaking the real wire format.

``GET /wp-json/wc/v3/products`` with basic auth (``consumer_key:consumer_secret``), ``per_page``,
``page``, ``orderby`` (``id``/``modified``), ``order``, ``modified_after`` + ``dates_are_gmt``
and ``_fields``; answers a JSON list with ``X-WP-Total`` and ``X-WP-TotalPages``, errors as
WooCommerce's ``{"code", "message", "data": {"status"}}``. ``/products/<id>/variations`` for
variable products. Tests change ``products``, queue failures (``fail``), or slow pages down
(``delay``); the benchmark gives a ``generate`` function instead of a dict (pages built on the fly).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY = "ck_test_0123456789abcdef0123456789abcdef"
SECRET = "cs_test_fedcba9876543210fedcba9876543210"
BASE = datetime_base = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def gmt(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def woo_product(
    pid: int,
    *,
    name: str | None = None,
    price: str = "19.99",
    stock: int | None = 5,
    modified: dt.datetime | None = None,
    status: str = "publish",
    description: str | None = None,
    categories: list[dict[str, Any]] | None = None,
    type_: str = "simple",
    variations: list[int] | None = None,
    slug: str | None = None,
) -> dict[str, Any]:
    """A product as WooCommerce's REST API returns it (the fields the source reads, and a few more)."""
    modified = modified or BASE
    return {
        "id": pid,
        "name": name if name is not None else f"Product {pid}",
        "slug": slug or f"product-{pid}",
        "permalink": f"https://shop.test/product/product-{pid}/",
        "date_created": gmt(BASE),
        "date_created_gmt": gmt(BASE),
        "date_modified": gmt(modified),
        "date_modified_gmt": gmt(modified),
        "type": type_,
        "status": status,
        "featured": False,
        "catalog_visibility": "visible",
        "description": description if description is not None else f"<p>About product {pid}</p>",
        "short_description": "",
        "sku": f"SKU-{pid}",
        "price": price,
        "regular_price": price,
        "sale_price": "",
        "on_sale": False,
        "purchasable": True,
        "manage_stock": stock is not None,
        "stock_quantity": stock,
        "stock_status": "instock",
        "categories": categories if categories is not None else [{"id": 9, "name": "Clothing", "slug": "clothing"}],
        "tags": [],
        "images": [],
        "attributes": [],
        "variations": variations or [],
        "meta_data": [],
    }


def woo_variation(vid: int, *, sku: str, price: str, stock: int | None, option: str) -> dict[str, Any]:
    return {
        "id": vid,
        "sku": sku,
        "price": price,
        "regular_price": price,
        "stock_quantity": stock,
        "manage_stock": stock is not None,
        "attributes": [{"id": 1, "name": "Size", "option": option}],
    }


class WooShop:
    def __init__(self, *, generate: Callable[[int], dict[str, Any]] | None = None, total: int = 0) -> None:
        self.products: dict[int, dict[str, Any]] = {}
        self.variations: dict[int, list[dict[str, Any]]] = {}
        self.generate, self.total = generate, total
        self.requests: list[dict[str, Any]] = []
        self.fail: list[tuple[int, dict[str, str], dict[str, Any]]] = []  # answered to the next product lists
        self.delay = 0.0
        self.lock = threading.Lock()
        shop = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                status, headers, body = shop.answer(self)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, *products: dict[str, Any]) -> None:
        for product in products:
            self.products[product["id"]] = product

    def list_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/products")]

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.requests.append({"path": parts.path, "query": query})
        expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
        if handler.headers.get("Authorization") != expected:
            return (
                401,
                {},
                {
                    "code": "woocommerce_rest_cannot_view",
                    "message": "Sorry, you cannot list resources.",
                    "data": {"status": 401},
                },
            )
        if parts.path == "/wp-json/wc/v3/products":
            with self.lock:
                failure = self.fail.pop(0) if self.fail else None
            if failure:
                return failure
            if self.delay:
                time.sleep(self.delay)
            return self.list_products(query)
        if parts.path.startswith("/wp-json/wc/v3/products/") and parts.path.endswith("/variations"):
            pid = int(parts.path.split("/")[-2])
            items = self.variations.get(pid, [])
            return 200, {"X-WP-Total": str(len(items)), "X-WP-TotalPages": "1"}, items
        return (
            404,
            {},
            {
                "code": "rest_no_route",
                "message": "No route was found matching the URL and request method.",
                "data": {"status": 404},
            },
        )

    def list_products(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        per_page, page = int(query.get("per_page", 10)), int(query.get("page", 1))
        if self.generate is not None:
            start = (page - 1) * per_page
            items = [self.generate(i) for i in range(start, min(start + per_page, self.total))]
            total = self.total
        else:
            items = list(self.products.values())
            if "modified_after" in query:
                assert query.get("dates_are_gmt") == "true"
                after = query["modified_after"]
                items = [p for p in items if p["date_modified_gmt"] > after]
            key = "date_modified_gmt" if query.get("orderby") == "modified" else "id"
            items.sort(key=lambda p: (p[key], p["id"]), reverse=query.get("order") == "desc")
            total = len(items)
            items = items[(page - 1) * per_page : page * per_page]
        if "_fields" in query:
            wanted = query["_fields"].split(",")
            items = [{k: v for k, v in p.items() if k in wanted} for p in items]
        pages = max(1, -(-total // per_page))
        return 200, {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}, items
