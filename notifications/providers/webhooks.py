"""The Standard Webhooks wire format: sign a body, POST it, and say what the answer means.

Knows only the wire: no models, no database. ``send`` is safe to call from many threads at
once (``broxiva.http`` builds a session per untrusted call), which is how the dispatcher runs
many deliveries concurrently.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from standardwebhooks import Webhook

from broxiva import http
from broxiva.ratelimit import retry_after_seconds

EXCERPT_BYTES = 1024
CONTENT_TYPE = "application/json"
# Anything shaped like a Standard Webhooks secret or signature, wherever a receiver echoes it.
_SECRETISH = re.compile(r"whsec_[A-Za-z0-9+/=]+|v1,[A-Za-z0-9+/=]{20,}")


def serialise(payload: Any) -> bytes:
    """Return the body for a payload: compact JSON, UTF-8, serialised once (the signed bytes are the sent bytes)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sign(*, secrets: list[str], msg_id: str, timestamp: datetime, body: bytes) -> str:
    """Return the ``webhook-signature`` value: one ``v1,…`` per secret, space-separated."""
    text = body.decode()
    return " ".join(Webhook(secret).sign(msg_id, timestamp, text) for secret in secrets)


def headers(*, secrets: list[str], msg_id: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
    """Return the headers of one attempt, signed at ``now`` (each retry is signed afresh).

    The timestamp is the attempt's, not the event's: receivers refuse signatures older than a
    few minutes (the reference library: 5), and retries come hours later.
    """
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "Content-Type": CONTENT_TYPE,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sign(secrets=secrets, msg_id=msg_id, timestamp=now, body=body),
    }


@dataclass(frozen=True)
class Outcome:
    """What one try produced. ``kind``: succeeded, gone (410), deferred (Retry-After) or failed."""

    kind: str
    status_code: int | None = None
    duration_ms: int = 0
    excerpt: str = ""
    error: str = ""
    retry_after: float | None = None
    transient: bool = True


def excerpt(body: bytes, secrets: list[str]) -> str:
    """Return at most 1 KB of a response body, as text, with our secrets and any signature masked."""
    text = body[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    for secret in secrets:
        text = text.replace(secret, "[secret]").replace(secret.removeprefix("whsec_"), "[secret]")
    text = _SECRETISH.sub("[redacted]", text)
    return text.encode()[:EXCERPT_BYTES].decode("utf-8", errors="ignore")


def send(*, url: str, msg_id: str, body: bytes, secrets: list[str], timeout: float | None = None) -> Outcome:
    """POST one signed attempt to ``url`` through the destination guard and classify the answer.

    2xx succeeded; 410 gone (the endpoint asks to be disabled); 429/503 with ``Retry-After``
    deferred (capped at ``WEBHOOK_RETRY_AFTER_MAX``); anything else failed — transient for
    timeouts, connection errors and other statuses, permanent for a refused destination.
    """
    timeout = settings.WEBHOOK_TIMEOUT if timeout is None else timeout
    started = time.monotonic()
    try:
        response = http.post(
            url,
            data=body,
            headers=headers(secrets=secrets, msg_id=msg_id, body=body),
            untrusted=True,
            timeout=timeout,
            max_bytes=1024 * 1024,
            max_redirects=0,
        )
    except http.HttpError as exc:
        # The kernel's messages name the host and the reason, never the query string.
        # A refused destination or a malformed URL will not get better by waiting; a timeout, a
        # refused connection or a failed TLS check (a certificate being renewed) may.
        permanent = isinstance(exc, (http.BlockedDestination, http.InvalidUrl))
        return Outcome("failed", duration_ms=_ms(started), error=str(exc)[:500], transient=not permanent)
    code = response.status
    common = {"status_code": code, "duration_ms": _ms(started), "excerpt": excerpt(response.body, secrets)}
    if 200 <= code < 300:
        return Outcome("succeeded", **common)
    if code == 410:
        return Outcome("gone", error="410 Gone: the receiver asked to stop", transient=False, **common)
    retry_after = response.headers.get("Retry-After")
    if code in (429, 503) and retry_after:
        wait = retry_after_seconds(retry_after, default=60, maximum=settings.WEBHOOK_RETRY_AFTER_MAX)
        return Outcome("deferred", error=f"{code} with Retry-After {wait:g}s", retry_after=wait, **common)
    if 300 <= code < 400:
        return Outcome("failed", error=f"{code} redirect (not followed: the endpoint URL must answer itself)", **common)
    return Outcome("failed", error=f"HTTP {code}", **common)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
