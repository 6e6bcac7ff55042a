"""Keep a connection's secrets out of everything we write down (run errors, logs, exceptions)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

MASK = "***"


def secret_values(connection: Any) -> list[str]:
    """Every secret string of a ``SourceConnection`` (or source ``Connection``): credentials'
    values, the webhook secret, and their URL-quoted and basic-auth forms."""
    values: set[str] = set()
    credentials = getattr(connection, "credentials", None) or {}
    if isinstance(credentials, dict):
        values |= {str(v) for v in credentials.values() if v not in (None, "") and not isinstance(v, bool)}
        key, secret = credentials.get("consumer_key"), credentials.get("consumer_secret")
        if key and secret:
            values.add(base64.b64encode(f"{key}:{secret}".encode()).decode())
    webhook_secret = getattr(connection, "webhook_secret", "")
    if webhook_secret:
        values.add(webhook_secret)
    values |= {quote(v, safe="") for v in values}
    # Short values (a store hash of a few characters) would mask ordinary words; they are not
    # credentials on their own.
    return sorted((v for v in values if len(v) >= 6), key=len, reverse=True)


def mask(text: str, connection: Any) -> str:
    """Return ``text`` with the connection's secrets replaced by ``***``."""
    for value in secret_values(connection):
        text = text.replace(value, MASK)
    return text
