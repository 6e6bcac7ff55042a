"""Web Push (RFC 8030) with message encryption (RFC 8291, ``aes128gcm``) and VAPID (RFC 8292).

``pywebpush`` encrypts the payload for the subscription's keys and ``py_vapid`` signs the VAPID
JWT, but the request itself goes through ``broxiva.http.post(..., untrusted=True)``: the
endpoint is a URL a browser gave us, so the kernel's destination guard must vet it (resolve,
refuse private/loopback/link-local, connect to the checked address). pywebpush's own
``webpush()`` would post with plain ``requests`` and bypass that guard.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException

from broxiva import http
from notifications.errors import PushNotConfigured, PushSendError

CONTENT_ENCODING = "aes128gcm"
VAPID_LIFETIME = 12 * 3600  # RFC 8292 allows up to 24 h


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str


def check_keys(subscription: Subscription) -> None:
    """Raise ``ValueError`` if the subscription's keys cannot encrypt a message."""
    try:
        pusher = WebPusher({"endpoint": subscription.endpoint,
                            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}})
        pusher.encode(b"x", CONTENT_ENCODING)
    except (WebPushException, ValueError, TypeError) as exc:
        raise ValueError(f"invalid Web Push subscription keys: {getattr(exc, 'message', exc)}") from None


def encrypt(subscription: Subscription, payload: bytes) -> bytes:
    """Return the ``aes128gcm`` body for the subscription (a fresh ephemeral key and salt)."""
    try:
        pusher = WebPusher({"endpoint": subscription.endpoint,
                            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}})
        return pusher.encode(payload, CONTENT_ENCODING)["body"]
    except (WebPushException, ValueError, TypeError) as exc:
        raise PushSendError(f"the subscription's keys cannot encrypt: {getattr(exc, 'message', exc)}",
                            transient=False, device_gone=True) from None


@functools.lru_cache(maxsize=4)
def _vapid(private_key: str) -> Vapid:
    return Vapid.from_raw(private_key.encode())


def vapid_authorization(endpoint: str) -> str:
    """Return ``vapid t=<JWT>, k=<public key>`` for the endpoint's origin (RFC 8292 §3)."""
    key, subject = settings.WEBPUSH_VAPID_PRIVATE_KEY, settings.WEBPUSH_VAPID_SUBJECT
    if not key or not subject:
        raise PushNotConfigured("Web Push", "WEBPUSH_VAPID_PRIVATE_KEY and WEBPUSH_VAPID_SUBJECT")
    parts = urlsplit(endpoint)
    claims = {"aud": f"{parts.scheme}://{parts.netloc}", "sub": subject, "exp": int(time.time()) + VAPID_LIFETIME}
    return _vapid(key).sign(claims)["Authorization"]


def send(subscription: Subscription, payload: bytes, *, ttl: int | None = None, urgency: str | None = None) -> None:
    """Deliver one encrypted message; raise ``PushSendError`` sorted for retry.

    404/410: the subscription is gone (``device_gone``). 429: ``retry_after``. 5xx, timeouts
    and dropped connections: transient. Any other answer, and a destination the guard refuses:
    permanent.
    """
    authorization = vapid_authorization(subscription.endpoint)
    body = encrypt(subscription, payload)
    headers = {
        "TTL": str(settings.WEBPUSH_TTL if ttl is None else ttl),
        "Content-Encoding": CONTENT_ENCODING,
        "Content-Type": "application/octet-stream",
        "Authorization": authorization,
    }
    if urgency:
        headers["Urgency"] = urgency
    try:
        # The endpoint's path is the subscription's capability: keep it out of logs and errors.
        response = http.post(subscription.endpoint, data=body, headers=headers, untrusted=True,
                             timeout=settings.WEBPUSH_TIMEOUT, max_bytes=64 * 1024, max_redirects=0,
                             secret_path=True)
    except http.BlockedDestination as exc:
        raise PushSendError(f"endpoint refused by the destination guard: {exc}", transient=False,
                            device_gone=True) from None
    except http.HttpError as exc:
        raise PushSendError(f"push service unreachable: {exc}", transient=exc.transient) from None
    if response.ok:
        return
    reason = f"push service answered HTTP {response.status}{_detail(response)}"
    if response.status in (404, 410):
        raise PushSendError(f"subscription gone: {reason}", transient=False, device_gone=True)
    if response.status == 429:
        retry_after = http.HttpStatusError(response).retry_after
        raise PushSendError(reason, transient=True, retry_after=retry_after)
    raise PushSendError(reason, transient=http.is_transient_status(response.status))


def _detail(response: http.Response) -> str:
    text = " ".join(response.text.split())[:200]
    return f": {text}" if text else ""
