"""One module per product source (Shopify, WooCommerce, BigCommerce, custom feed).

Each knows only its own wire format and turns it into ``products.sources.base`` records; the
sync engine (``products.services``) never sees a source's JSON.
"""
