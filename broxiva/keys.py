"""Redis key conventions (DESIGN.md §5): the one place that formats a key for the main Redis DB.

Every key is ``{category}:{tenant?}:{entity}:{identifier}``: a category from ``CATEGORIES``, the
tenant's slug when the data belongs to one shop, then one or more parts. Parts often come from
outside (a webhook's event id, a locale, a currency code, a product handle), so each is checked:
a part containing ``:`` could forge extra segments and so reach another tenant's or another
entity's key, and whitespace or control characters make keys that cannot be typed, logged or
matched reliably. Redis glob characters are refused too, so a key built here can be turned into
a ``SCAN MATCH`` pattern (``pattern()``) that matches only what it says.

RQ's own keys (``rq:job:<id>`` …) live in REDIS_QUEUE_DB and are RQ's business, not this table's.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

SEPARATOR = ":"
MAX_PART_LENGTH = 256

# A lock resource or idempotency key: "a:b:c", or ("a", "b", value) when a part comes from outside.
Name = str | tuple[Any, ...]


@dataclass(frozen=True)
class Category:
    name: str
    purpose: str
    ttl: int  # seconds


# DESIGN.md §5. ``lock`` is the default lock lease (30–60 s in the table; callers pick within it);
# ``ratelimit`` keys get their exact expiry from the limiter (it "varies" with the limit's period):
# the value here is the ceiling used when a caller has nothing better.
CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("fx", "exchange rates", 3600),
        Category("tenant", "tenant configuration", 3600),
        Category("translation", "translation cache", 24 * 3600),
        Category("product", "product cache", 3600),
        Category("lock", "distributed locks", 30),
        Category("idempotency", "webhook replay protection", 24 * 3600),
        Category("ratelimit", "rate-limit counters", 3600),
        Category("sitemap", "generated sitemaps", 24 * 3600),
        Category("domain", "domain verification", 300),
        # notifications: "a webhook dispatch job is already queued" (one kick for many events).
        Category("webhook", "webhook dispatch coordination", 30),
    )
}

# Characters that would let a part escape its segment or turn into a wildcard in SCAN/KEYS.
_FORBIDDEN = frozenset(SEPARATOR + "*?[]\\")
# Fast path (keys are built on every lock, claim and cache call): printable ASCII without
# space and without the characters above. Anything else goes through the full check.
_SAFE_ASCII = re.compile(r"[!-)+-9;->@-Z^-~]+")


def ttl(category: str) -> int:
    """Return the TTL in seconds of keys in ``category``; raise ValueError for an unknown one."""
    return _category(category).ttl


def build_key(category: str, *parts: Any, tenant: Any = None) -> str:
    """Return ``category:[tenant:]part:part…``.

    ``tenant`` is a Tenant (its slug is used), a slug, or None for data shared by every shop.
    Parts are strings or integers. Raise ValueError for an unknown category, no parts, or any
    part (tenant included) that is empty, too long, or contains ``:``, whitespace, control
    characters or glob characters.
    """
    _category(category)
    if not parts:
        raise ValueError(f"a {category}: key needs at least one part after the category")
    segments = [category]
    if tenant is not None:
        segments.append(_part(getattr(tenant, "slug", tenant), what="tenant"))
    segments.extend(_part(part) for part in parts)
    return SEPARATOR.join(segments)


def split_name(name: Name | list[Any]) -> list[str]:
    """Split a colon-namespaced name (``webhook:shopify:<event id>``) into checked parts.

    For APIs that take one name, like lock resources and idempotency keys; each segment is
    validated like a ``build_key`` part, so ``a::b`` or a trailing colon is refused. A string
    cannot tell a namespace colon from one inside an outside value, so a name holding such a
    value should be given as a tuple (``("webhook", "shopify", event_id)``): then every element
    is one part and a colon in any of them is refused.
    """
    if isinstance(name, (tuple, list)):
        if not name:
            raise ValueError("a key name needs at least one part")
        return [_part(part) for part in name]
    if not isinstance(name, str):
        raise ValueError(f"a key name must be a string or a tuple of parts, not {type(name).__name__}")
    return [_part(segment) for segment in name.split(SEPARATOR)]


def pattern(category: str, *parts: Any, tenant: Any = None) -> str:
    """Return a ``SCAN MATCH`` pattern for every key under ``build_key(category, *parts, tenant)``."""
    if not parts and tenant is None:
        _category(category)
        return f"{category}{SEPARATOR}*"
    if not parts:
        return SEPARATOR.join([category, _part(getattr(tenant, "slug", tenant), what="tenant"), "*"])
    return build_key(category, *parts, tenant=tenant) + SEPARATOR + "*"


def _category(name: str) -> Category:
    try:
        return CATEGORIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown Redis key category {name!r}; known: {', '.join(CATEGORIES)}") from None


def _part(value: Any, *, what: str = "key part") -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{what} must be a string or an integer, not {type(value).__name__}")
    text = str(value)
    if not text:
        raise ValueError(f"{what} must not be empty")
    if len(text) > MAX_PART_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_PART_LENGTH} characters")
    if _SAFE_ASCII.fullmatch(text):
        return text
    for ch in text:
        # Category Z* is whitespace/separators (incl. U+2028), C* is control, format (zero-width,
        # bidi overrides), surrogates and unassigned code points.
        if ch in _FORBIDDEN or ch.isspace() or unicodedata.category(ch)[0] in "CZ":
            raise ValueError(f"{what} {text[:40]!r} contains a forbidden character {ch!r}")
    return text
