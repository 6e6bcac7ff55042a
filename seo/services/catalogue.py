"""What goes in a tenant's sitemaps: its storefront URLs, read in chunks, one entity at a time.

Every reader yields ``Entity`` objects: the entity's URL in each locale it exists in (with that
version's ``lastmod``) and its ``x-default``. Rows are streamed with ``.iterator(chunk_size)``
and only the columns needed; the published translations of a chunk of entities are read in one
query (``translations`` table, index ``translations_entity``), so the query count grows with
chunks, never with URLs.

Rules (docs/sitemaps.md):
- a product (``status=active``) is in the default locale always, and in another locale when its
  title has a published text there (``translations.selectors.published_texts``' rule: the text
  the storefront shows; a newer draft does not hide it);
- a category likewise with its name's translation (``content_type=category_name``);
- a page in its own locales (``Page.locales``, empty: the default locale).
- ``lastmod`` (a W3C string, formatted by the database): the product's ``updated_at``, or for a
  translated version the later of it and the
  locale's newest published translation of the product; a category has no timestamp of its own,
  so its default version has none and a translated one its translation's publication time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.db.models import CharField, F, Func, Lookup
from django.utils.text import slugify

from broxiva.models import Tenant
from products.models import Category, Product
from seo.models import Page
from seo.services.ahead import read_ahead
from translations.models import Translation

TYPES = ("products", "categories", "pages")


class W3C(Func):
    """A timestamp column as the W3C Datetime string of ``writer.w3c``, formatted by the database.

    Parsing millions of timestamps into Python datetimes and formatting them back was a third of
    a big catalogue's run; the strings (fixed format, UTC) compare as the times do.
    """

    output_field = CharField()

    def __init__(self, field: str) -> None:
        super().__init__(F(field))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django stores aware datetimes in SQLite as UTC text; "%%%%" survives two rounds of %-formatting.
        template = "strftime('%%%%Y-%%%%m-%%%%dT%%%%H:%%%%M:%%%%S+00:00', %(expressions)s)"
        return self.as_sql(compiler, connection, template=template, **extra)
# What may stay unescaped in a path segment: RFC 3986 pchar minus "/" (a handle is one segment).
# "&" stays a literal "&" in the URL (it is legal in a path) and is written "&amp;" in the XML.
_SAFE = "!$&'()*+,;=:@-._~"


@dataclass(frozen=True)
class Site:
    tenant_id: int
    host: str
    locales: tuple[str, ...]  # the tenant's, default first
    default_locale: str
    chunk_size: int

    @classmethod
    def of(cls, tenant: Tenant, host: str) -> Site:
        return cls(tenant.pk, host, tuple(tenant.locales), tenant.default_locale, settings.SITEMAP_CHUNK_SIZE)

    def urls(self, kind: str, **values: Any) -> dict[str, str]:
        """Return the entity's absolute URL in every locale of the shop (values escaped once)."""
        escaped = {name: _escape(value) for name, value in values.items()}
        return {locale: f"https://{self.host}{pattern.format(**escaped)}" for locale, pattern in self.patterns(kind)}

    def patterns(self, kind: str) -> list[tuple[str, str]]:
        cache = self.__dict__.setdefault("_patterns", {})  # frozen: the cache goes in the instance dict
        if kind not in cache:
            pattern = settings.STOREFRONT_URL_PATTERNS[kind]
            # The locale is the same for every entity: put it in now, keeping the other fields.
            cache[kind] = [
                (locale, pattern.replace("{locale}", quote(locale, safe=_SAFE))) for locale in self.locales
            ]
        return cache[kind]


_PLAIN = re.compile(r"[A-Za-z0-9._~-]*")


def _escape(value: Any) -> str:
    text = str(value)
    if _PLAIN.fullmatch(text):  # most handles and ids: nothing to escape, skip quote()'s cost
        return text
    return quote(text, safe=_SAFE)


@dataclass(slots=True)
class Entity:
    """One page of the storefront in every locale it exists in."""

    versions: dict[str, tuple[str, str | None]]  # locale → (absolute URL, lastmod)
    x_default: str


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _published(
    site: Site, content_types: list[str], entity_ids: list[str], fields: tuple[str, ...] | None = None
) -> dict[tuple[str, str], tuple[bool, str | None]]:
    """Return ``{(entity_id, locale): (has the required field, newest published_at)}`` in one query."""
    others = [loc for loc in site.locales if loc != site.default_locale]
    if not others or not entity_ids:
        return {}
    query = Translation.objects.filter(
        tenant_id=site.tenant_id, target_locale__in=others, content_type__in=content_types
    )
    if connection.vendor == "postgresql":
        query = query.filter(entity_id__any_of=list(entity_ids))
    else:
        query = query.filter(entity_id__in=entity_ids)
    rows = (
        query.exclude(published_text="")
        .values_list("entity_id", "target_locale", "field_name", W3C("published_at"))
    )
    found: dict[tuple[str, str], tuple[bool, str | None]] = {}
    for entity_id, locale, field, published_at in rows:
        required, newest = found.get((entity_id, locale), (False, None))
        required = required or fields is None or field in fields
        if published_at is not None and (newest is None or published_at > newest):
            newest = published_at
        found[(entity_id, locale)] = (required, newest)
    return found


class _AnyOf(Lookup):
    """``field = ANY(%s)`` with the values as one array parameter (PostgreSQL).

    With thousands of ids a chunk, ``IN`` with a placeholder per id costs more than the lookup
    itself: psycopg parses the placeholders client-side and the server plans the long list
    (measured in bench_sitemaps).
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def get_db_prep_lookup(self, value: Any, connection: Any) -> tuple[str, list[Any]]:
        return "%s", [[str(v) for v in value]]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs}::varchar[])", [*lhs_params, *rhs_params]


Translation._meta.get_field("entity_id").register_lookup(_AnyOf)  # this field only, not every CharField


def _later(a: str | None, b: str | None) -> str | None:  # W3C strings in UTC sort as their times
    if a is None or b is None:
        return a or b
    return max(a, b)


def _product_chunks(site: Site) -> Iterator[tuple[list[Any], dict[tuple[str, str], tuple[bool, str | None]]]]:
    rows = (
        Product.objects.filter(tenant_id=site.tenant_id, status=Product.Status.ACTIVE)
        .order_by("id")
        .values_list("id", "handle", "external_id", W3C("updated_at"))
        .iterator(chunk_size=site.chunk_size)
    )
    for chunk in _chunks(rows, site.chunk_size):
        yield chunk, _published(
            site, ["product_title", "product_description"], [str(row[0]) for row in chunk], fields=("title",)
        )


def products(site: Site) -> Iterator[Entity]:
    for chunk, published in read_ahead(lambda: _product_chunks(site)):
        for pk, handle, external_id, updated_at in chunk:
            urls = site.urls("product", handle=handle or pk, id=pk, external_id=external_id)
            versions: dict[str, tuple[str, str | None]] = {}
            for locale in site.locales:
                if locale == site.default_locale:
                    versions[locale] = (urls[locale], updated_at)
                    continue
                required, newest = published.get((str(pk), locale), (False, None))
                if required:
                    versions[locale] = (urls[locale], _later(updated_at, newest))
            yield Entity(versions, versions[site.default_locale][0])


def _category_chunks(site: Site) -> Iterator[tuple[list[Any], dict[tuple[str, str], tuple[bool, str | None]]]]:
    rows = (
        Category.objects.filter(tenant_id=site.tenant_id)
        .order_by("id")
        .values_list("id", "external_id", "name")
        .iterator(chunk_size=site.chunk_size)
    )
    for chunk in _chunks(rows, site.chunk_size):
        yield chunk, _published(site, ["category_name"], [str(row[0]) for row in chunk], fields=("name",))


def categories(site: Site) -> Iterator[Entity]:
    for chunk, published in read_ahead(lambda: _category_chunks(site)):
        for pk, external_id, name in chunk:
            urls = site.urls("category", id=pk, external_id=external_id, slug=slugify(name) or pk)
            versions: dict[str, tuple[str, str | None]] = {}
            for locale in site.locales:
                if locale == site.default_locale:
                    versions[locale] = (urls[locale], None)
                    continue
                required, newest = published.get((str(pk), locale), (False, None))
                if required:
                    versions[locale] = (urls[locale], newest)
            yield Entity(versions, versions[site.default_locale][0])


def pages(site: Site) -> Iterator[Entity]:
    rows = (
        Page.objects.filter(tenant_id=site.tenant_id, is_published=True)
        .order_by("id")
        .values_list("slug", "locales", W3C("updated_at"))
        .iterator(chunk_size=site.chunk_size)
    )
    for slug, locales, updated_at in rows:
        own = set(locales or [site.default_locale])
        urls = site.urls("page", slug=slug)
        versions = {locale: (urls[locale], updated_at) for locale in site.locales if locale in own}
        if not versions:  # written only in locales the shop no longer publishes in
            continue
        # x-default: the default locale's version, else the page's first locale in the shop's order.
        yield Entity(versions, next(iter(versions.values()))[0])


READERS = {"products": products, "categories": categories, "pages": pages}
