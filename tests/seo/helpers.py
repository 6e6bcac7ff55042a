"""Catalogues built through the products and translations apps, and readers of what was generated."""

from __future__ import annotations

import gzip
from pathlib import Path

from lxml import etree

from products.handoff import request_product_translations
from products.models import Category, Product, SourceConnection
from translations import services as translations
from translations.models import Translation, source_hash

XSD = Path(__file__).parent / "xsd"
NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "x": "http://www.w3.org/1999/xhtml"}
_schemas: dict[str, etree.XMLSchema] = {}


def schema(name: str) -> etree.XMLSchema:
    if name not in _schemas:
        _schemas[name] = etree.XMLSchema(etree.parse(str(XSD / name)))
    return _schemas[name]


def validate_urlset(xml: bytes) -> etree._Element:
    """Parse and validate a sitemap strictly (sitemap.xsd plus the xhtml:link declaration)."""
    doc = etree.fromstring(xml)
    schema("xhtml-link.xsd").assertValid(doc)
    return doc


def validate_index(xml: bytes) -> etree._Element:
    doc = etree.fromstring(xml)
    schema("siteindex.xsd").assertValid(doc)
    return doc


def connection(tenant) -> SourceConnection:
    return SourceConnection.objects.get_or_create(
        tenant=tenant, source="custom", defaults={"name": "feed", "base_url": "https://feed.invalid/products.json"}
    )[0]


def add_products(tenant, handles: list[str], *, status: str = "active", titled: bool = True) -> list[Product]:
    conn = connection(tenant)
    start = Product.objects.filter(connection=conn).count()
    return Product.objects.bulk_create(
        [
            Product(tenant=tenant, connection=conn, external_id=f"ext-{start + i}", handle=handle,
                    title=f"Product {handle}" if titled else "", status=status)
            for i, handle in enumerate(handles)
        ],
        batch_size=5000,
    )


def add_category(tenant, name: str) -> Category:
    conn = connection(tenant)
    return Category.objects.create(tenant=tenant, connection=conn, external_id=f"cat-{name}", name=name)


def _finish(row: Translation, user, *, publish: bool) -> Translation:
    """Translate the row with the local LLM server (the job's service), approve, publish."""
    row.refresh_from_db()
    translations.translation_run(translation_id=row.pk, source_hash=source_hash(row.source_text))
    row.refresh_from_db()
    assert row.status == Translation.Status.AUTO_TRANSLATED, row.last_error
    if publish:
        translations.approve(row.pk, user=user)
        row = translations.publish(row.pk, user=user)
    return row


def translate_products(tenant, products: list[Product], locale: str, user, *, publish: bool = True) -> None:
    """Hand the products' titles over (the products app's hand-off) and take them through to published."""
    request_product_translations(tenant=tenant, changes=[(p, ["title"]) for p in products])
    rows = Translation.objects.filter(
        tenant=tenant, content_type="product_title", target_locale=locale,
        entity_id__in=[str(p.pk) for p in products],
    )
    for row in rows:
        _finish(row, user, publish=publish)


def translate_category(tenant, category: Category, locale: str, user) -> Translation:
    row = translations.request_translation(
        tenant_id=tenant.pk, content_type="category_name", entity_id=str(category.pk), field_name="name",
        source_locale=tenant.default_locale, target_locale=locale, source_text=category.name,
    )
    return _finish(row, user, publish=True)


def read(storage, path: str) -> bytes:
    with storage.open(path, "rb") as fh:
        return fh.read()


def urlsets(storage, generation) -> dict[str, etree._Element]:
    """Every sitemap file of the generation, gunzipped and validated, by name."""
    return {f["name"]: validate_urlset(gzip.decompress(read(storage, f["path"]))) for f in generation.files}


def entries(doc: etree._Element) -> dict[str, dict]:
    """``{loc: {"lastmod": str|None, "alternates": {hreflang: href}}}`` of one sitemap."""
    found = {}
    for url in doc.iterfind("s:url", NS):
        loc = url.findtext("s:loc", namespaces=NS)
        found[loc] = {
            "lastmod": url.findtext("s:lastmod", namespaces=NS),
            "alternates": {link.get("hreflang"): link.get("href") for link in url.iterfind("x:link", NS)},
        }
    return found
