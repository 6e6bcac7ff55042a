"""One module per product source (Shopify, WooCommerce, BigCommerce, custom feed).

Each knows only its own wire format and turns it into ``products.sources.base`` records; the
sync engine (``products.services``) never sees a source's JSON. ``get_source(name)`` imports a
source's module when it is first needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from products.sources.base import Source

MODULES: dict[str, str] = {
    "shopify": "products.sources.shopify",
    "woocommerce": "products.sources.woocommerce",
    "bigcommerce": "products.sources.bigcommerce",
    "custom": "products.sources.custom",
}


def get_source(name: str) -> Source:
    """Return the ``SOURCE`` of source ``name``; ``SourceError`` (permanent) if it is unknown."""
    from products.sources.base import SourceError

    try:
        path = MODULES[name]
    except KeyError:
        raise SourceError(f"unknown product source {name!r}; known: {', '.join(MODULES)}", transient=False) from None
    return import_module(path).SOURCE
