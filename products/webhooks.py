"""Inbound product webhooks: verify, drop duplicates and stale events, enqueue a sync job.

Each source signs differently (all compared in constant time):

- shopify: ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body), delivery
  ``X-Shopify-Webhook-Id``, topic ``X-Shopify-Topic``;
- woocommerce: ``X-WC-Webhook-Signature`` (the same HMAC), delivery ``X-WC-Webhook-Delivery-ID``,
  topic ``X-WC-Webhook-Topic``;
- bigcommerce: a secret header set when the webhook was created
  (``PRODUCT_WEBHOOK_BIGCOMMERCE_HEADER``), delivery the payload's ``hash``, topic its ``scope``;
- custom: ``X-Broxiva-Signature`` (the same HMAC), ``X-Broxiva-Delivery-Id``, ``X-Broxiva-Topic``.

Without a delivery id, the body's SHA-256 stands in for one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from products.sources import _parse

SIGNATURE_HEADERS = {
    "shopify": "X-Shopify-Hmac-Sha256",
    "woocommerce": "X-WC-Webhook-Signature",
    "custom": "X-Broxiva-Signature",
}
DELIVERY_HEADERS = {
    "shopify": "X-Shopify-Webhook-Id",
    "woocommerce": "X-WC-Webhook-Delivery-ID",
    "custom": "X-Broxiva-Delivery-Id",
}
TOPIC_HEADERS = {"shopify": "X-Shopify-Topic", "woocommerce": "X-WC-Webhook-Topic", "custom": "X-Broxiva-Topic"}
# Headers handed to the source's parse_webhook (never a signature or secret).
FORWARDED = (
    "x-shopify-topic",
    "x-shopify-shop-domain",
    "x-shopify-api-version",
    "x-shopify-webhook-id",
    "x-shopify-triggered-at",
    "x-wc-webhook-topic",
    "x-wc-webhook-resource",
    "x-wc-webhook-event",
    "x-wc-webhook-source",
    "x-wc-webhook-delivery-id",
    "x-broxiva-topic",
    "x-broxiva-delivery-id",
)
WOO_PING = re.compile(rb"webhook_id=[0-9]+")
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def is_woocommerce_ping(request: HttpRequest, body: bytes) -> bool:
    """WooCommerce's unsigned ``webhook_id=<id>`` form POST, sent once when a webhook is saved."""
    return WOO_PING.fullmatch(body.strip()) is not None and not request.headers.get(SIGNATURE_HEADERS["woocommerce"])


def verify(source: str, secret: str, request: HttpRequest, body: bytes) -> bool:
    """Return True if the request carries the connection's signature (or secret header) for ``body``."""
    if not secret:
        return False  # a connection without a secret accepts nothing
    if source == "bigcommerce":
        given = request.headers.get(settings.PRODUCT_WEBHOOK_BIGCOMMERCE_HEADER, "")
        return hmac.compare_digest(given.encode(), secret.encode())
    given = request.headers.get(SIGNATURE_HEADERS[source], "")
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(given.strip().encode(), expected)


@dataclass(frozen=True)
class Event:
    topic: str
    delivery_id: str
    external_id: str | None
    updated_at: dt.datetime | None
    headers: dict[str, str]

    def job_data(self, payload: Any) -> dict[str, Any]:
        return {"topic": self.topic, "delivery_id": self.delivery_id, "headers": self.headers, "payload": payload}


def event(source: str, request: HttpRequest, body: bytes, payload: Any) -> Event:
    """Read what the view needs of a verified delivery: topic, delivery id, product id and time."""
    data = payload if isinstance(payload, dict) else {}
    if source == "bigcommerce":
        topic, delivery = str(data.get("scope") or ""), str(data.get("hash") or "")
        inner = data.get("data") if isinstance(data.get("data"), dict) else {}
        external_id, stamp = inner.get("id"), None
    else:
        topic = request.headers.get(TOPIC_HEADERS[source], "")
        delivery = request.headers.get(DELIVERY_HEADERS[source], "")
        external_id = data.get("id")
        stamp = {
            "shopify": data.get("updated_at") or request.headers.get("X-Shopify-Triggered-At"),
            "woocommerce": data.get("date_modified_gmt"),
            "custom": data.get("updated_at"),
        }[source]
    if not _SAFE_ID.fullmatch(delivery):
        delivery = hashlib.sha256(delivery.encode() if delivery else body).hexdigest()
    try:
        updated_at = _parse.timestamp(stamp, key="updated_at") if stamp else None
    except ValueError:
        updated_at = None
    headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
    ext = None if external_id is None or isinstance(external_id, (dict, list, bool)) else str(external_id)[:255]
    return Event(topic=topic, delivery_id=delivery, external_id=ext, updated_at=updated_at, headers=headers)
