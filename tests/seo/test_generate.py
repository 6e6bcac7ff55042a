"""generate_sitemaps end to end on a catalogue made through the products and translations apps."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest
from django.core.files.storage import storages
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from products.models import Product
from seo.models import Page, SitemapGeneration
from seo.services import current_generation, generate_sitemaps
from tests.seo.helpers import (
    add_category,
    add_products,
    entries,
    read,
    translate_category,
    translate_products,
    urlsets,
    validate_index,
)

pytestmark = pytest.mark.django_db
HOST = "https://acme.broxiva.com"


@pytest.fixture
def shop(acme, llm, publisher):
    """acme (en, fr, de): a shirt published in fr only, a handle with "&", a draft product, a
    category named in fr, a page in en and fr."""
    shirt, salt, draft = add_products(acme, ["red-shirt", "salt&pepper", "hidden"])
    Product.objects.filter(pk=draft.pk).update(status=Product.Status.DRAFT)
    translate_products(acme, [shirt], "fr", publisher)
    translate_products(acme, [salt], "de", publisher, publish=False)  # auto-translated, never published
    shoes = add_category(acme, "Shoes")
    translate_category(acme, shoes, "fr", publisher)
    Page.objects.create(tenant=acme, slug="about", title="About", locales=["en", "fr"])
    return {"shirt": shirt, "salt": salt, "draft": draft, "shoes": shoes}


def all_entries(generation):
    docs = urlsets(storages["sitemaps"], generation)
    return docs, {name: entries(doc) for name, doc in docs.items()}


def test_it_writes_valid_files_by_type_and_locale_with_reciprocal_hreflang(acme, shop):
    generation = generate_sitemaps(tenant_id=acme.pk)

    assert generation.status == "succeeded" and generation.published
    names = [f["name"] for f in generation.files]
    assert names == [
        "products-en-1.xml.gz", "products-fr-1.xml.gz", "categories-en-1.xml.gz", "categories-fr-1.xml.gz",
        "pages-en-1.xml.gz", "pages-fr-1.xml.gz",
    ]
    docs, by_file = all_entries(generation)  # every file validated against the XSDs
    index = validate_index(read(storages["sitemaps"], generation.index_files[0]))
    listed = [loc.text for loc in index.iterfind("{*}sitemap/{*}loc")]
    assert listed == [f"{HOST}/sitemaps/{generation.pk}/{name}" for name in names]

    en, fr = f"{HOST}/en/products/red-shirt", f"{HOST}/fr/products/red-shirt"
    assert by_file["products-en-1.xml.gz"][en]["alternates"] == {"en": en, "fr": fr, "x-default": en}
    assert by_file["products-fr-1.xml.gz"][fr]["alternates"] == {"en": en, "fr": fr, "x-default": en}
    # The draft is nowhere; the de locale has no file at all (nothing is published in de).
    every = {loc for urls in by_file.values() for loc in urls}
    assert not any("hidden" in loc for loc in every)
    assert not any("/de/" in loc for loc in every)

    # Reciprocity: every alternate of every URL is itself listed, with the very same alternates.
    loc_of = {loc: data for urls in by_file.values() for loc, data in urls.items()}
    for loc, data in loc_of.items():
        assert data["alternates"][data_locale(loc)] == loc
        assert data["alternates"]["x-default"].startswith(f"{HOST}/en/")
        for lang, href in data["alternates"].items():
            assert href in loc_of, f"{loc} points at {href}, which no sitemap lists"
            assert lang == "x-default" or data_locale(href) == lang
            assert loc_of[href]["alternates"] == data["alternates"]

    cat_fr = next(iter(by_file["categories-fr-1.xml.gz"]))
    assert cat_fr == f"{HOST}/fr/categories/{shop['shoes'].pk}-shoes"
    assert set(by_file["pages-fr-1.xml.gz"]) == {f"{HOST}/fr/pages/about"}
    assert generation.url_count == 3 + 2 + 2  # products en(2)+fr(1), categories en+fr, pages en+fr


def data_locale(loc: str) -> str:
    return loc.removeprefix(HOST + "/").split("/", 1)[0]


def test_it_leaves_a_product_out_of_a_locale_without_a_published_title(acme, shop):
    generation = generate_sitemaps(tenant_id=acme.pk)
    _, by_file = all_entries(generation)
    salt_en = f"{HOST}/en/products/salt&pepper"
    assert by_file["products-en-1.xml.gz"][salt_en]["alternates"] == {"en": salt_en, "x-default": salt_en}
    assert "products-de-1.xml.gz" not in by_file  # its de translation is auto-translated, not published
    assert f"{HOST}/fr/products/salt&pepper" not in by_file["products-fr-1.xml.gz"]


def test_it_escapes_an_ampersand_and_round_trips_gzip(acme, shop):
    generation = generate_sitemaps(tenant_id=acme.pk)
    record = next(f for f in generation.files if f["name"] == "products-en-1.xml.gz")
    stored = read(storages["sitemaps"], record["path"])
    assert stored[:2] == b"\x1f\x8b"  # gzip magic
    raw = gzip.decompress(stored)
    assert len(raw) == record["bytes"] and len(stored) == record["compressed_bytes"]
    assert b"<loc>https://acme.broxiva.com/en/products/salt&amp;pepper</loc>" in raw
    assert b'href="https://acme.broxiva.com/en/products/salt&amp;pepper"' in raw
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_it_stamps_lastmod_with_the_latest_real_change(acme, shop):
    from translations.models import Translation

    shirt = Product.objects.get(pk=shop["shirt"].pk)
    published = Translation.objects.get(entity_id=str(shirt.pk), content_type="product_title", target_locale="fr")
    old = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    Product.objects.filter(pk=shirt.pk).update(updated_at=old)

    _, by_file = all_entries(generate_sitemaps(tenant_id=acme.pk))
    en = by_file["products-en-1.xml.gz"][f"{HOST}/en/products/red-shirt"]
    fr = by_file["products-fr-1.xml.gz"][f"{HOST}/fr/products/red-shirt"]
    assert en["lastmod"] == "2024-01-02T03:04:05+00:00"  # the product's own change
    assert fr["lastmod"] == published.published_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    raw = gzip.decompress(read(storages["sitemaps"], current_generation(acme.pk).files[0]["path"]))
    assert b"priority" not in raw and b"changefreq" not in raw


def test_it_splits_45001_products_into_two_files_and_an_index(initech):
    add_products(initech, [f"p-{i}" for i in range(45_001)])
    generation = generate_sitemaps(tenant_id=initech.pk)

    assert [(f["name"], f["urls"]) for f in generation.files] == [
        ("products-en-1.xml.gz", 45_000), ("products-en-2.xml.gz", 1),
    ]
    docs = urlsets(storages["sitemaps"], generation)  # both validated against sitemap.xsd
    assert [len(doc) for doc in docs.values()] == [45_000, 1]
    index = validate_index(read(storages["sitemaps"], generation.index_files[0]))
    assert len(index) == 2


def test_it_splits_a_file_before_it_reaches_the_byte_limit(settings, initech):
    settings.SITEMAP_MAX_BYTES = 64 * 1024
    add_products(initech, [f"a-rather-long-product-handle-{i:05d}" for i in range(2_000)])
    generation = generate_sitemaps(tenant_id=initech.pk)
    assert len(generation.files) > 2
    assert all(f["bytes"] < 64 * 1024 for f in generation.files)
    assert sum(f["urls"] for f in generation.files) == 2_000
    docs = urlsets(storages["sitemaps"], generation)
    assert sum(len(d) for d in docs.values()) == 2_000


def test_it_splits_an_index_over_its_entry_limit(settings, initech):
    settings.SITEMAP_MAX_URLS = 2
    settings.SITEMAP_INDEX_MAX_ENTRIES = 3
    add_products(initech, [f"p-{i}" for i in range(7)])  # 4 files → 2 index files
    generation = generate_sitemaps(tenant_id=initech.pk)
    assert len(generation.files) == 4 and len(generation.index_files) == 2
    parts = [validate_index(read(storages["sitemaps"], path)) for path in generation.index_files]
    assert [len(p) for p in parts] == [3, 1]


def test_it_reads_translations_per_chunk_not_per_product(settings, acme, shop):
    settings.SITEMAP_CHUNK_SIZE = 10

    def translation_queries(extra: int) -> int:
        add_products(acme, [f"more-{extra}-{i}" for i in range(extra)])
        with CaptureQueriesContext(db_connection) as queries:
            generate_sitemaps(tenant_id=acme.pk, types=["products"], upload_to_storage=False)
        return sum('FROM "translations"' in q["sql"] for q in queries.captured_queries)

    small = translation_queries(20)  # 22 active products: 3 chunks
    large = translation_queries(200)  # 222: 23 chunks
    assert (small, large) == (3, 23)


def test_it_writes_the_index_last(settings, acme, shop, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "sitemaps": {"BACKEND": "tests.seo.storages.RecordingStorage", "OPTIONS": {"location": str(tmp_path / "rec")}},
    }
    from tests.seo.storages import RecordingStorage

    first = generate_sitemaps(tenant_id=acme.pk)
    RecordingStorage.reset()
    generation = generate_sitemaps(tenant_id=acme.pk)
    saved = [name.rsplit("/", 1)[1] for name in RecordingStorage.saved]
    assert saved[-1] == "sitemap.xml" and saved.count("sitemap.xml") == 1
    assert sorted(saved[:-1]) == sorted(f["name"] for f in generation.files)
    # The new generation becomes current only after its index is stored: while anything was
    # being saved, /sitemap.xml still served the first one, whose files were all there.
    assert [g.pk for g in RecordingStorage.current_while_saving] == [first.pk] * len(saved)
    assert current_generation(acme.pk).pk == generation.pk


def test_it_removes_older_generations_files_after_publishing_a_new_one(acme, shop, sitemap_storage):
    first = generate_sitemaps(tenant_id=acme.pk)
    second = generate_sitemaps(tenant_id=acme.pk)
    storage = storages["sitemaps"]
    assert current_generation(acme.pk).pk == second.pk
    assert all(not storage.exists(f["path"]) for f in first.files)
    assert not storage.exists(first.index_files[0])
    assert all(storage.exists(f["path"]) for f in second.files)
    first.refresh_from_db()
    assert first.purged and not first.published


def test_it_regenerates_some_types_and_keeps_the_others_files(acme, shop):
    first = generate_sitemaps(tenant_id=acme.pk)
    second = generate_sitemaps(tenant_id=acme.pk, types=["pages"], locales=["fr"])
    kept = {f["name"]: f["generation"] for f in second.files}
    assert kept["pages-fr-1.xml.gz"] == second.pk
    assert kept["products-en-1.xml.gz"] == first.pk and len(kept) == 6
    storage = storages["sitemaps"]
    assert all(storage.exists(f["path"]) for f in second.files)
    assert not storage.exists(next(f["path"] for f in first.files if f["name"] == "pages-fr-1.xml.gz"))
    index = validate_index(read(storage, second.index_files[0]))
    assert len(index) == 6


def test_it_refuses_bad_input_and_keeps_the_current_sitemap(acme, shop):
    from seo.errors import InvalidRequest

    current = generate_sitemaps(tenant_id=acme.pk)
    for kwargs, message in (
        ({"tenant_id": 999_999}, "does not exist"),
        ({"tenant_id": acme.pk, "types": ["videos"]}, "unknown sitemap type"),
        ({"tenant_id": acme.pk, "locales": ["es"]}, "not locales of tenant acme"),
    ):
        with pytest.raises(InvalidRequest, match=message) as caught:
            generate_sitemaps(**kwargs)
        assert caught.value.transient is False
    assert current_generation(acme.pk).pk == current.pk
    assert SitemapGeneration.objects.count() == 1
    assert all(storages["sitemaps"].exists(f["path"]) for f in current.files)


def test_a_failed_generation_removes_what_it_stored_and_keeps_the_current_one(settings, acme, shop, tmp_path):
    current = generate_sitemaps(tenant_id=acme.pk)
    location = settings.STORAGES["sitemaps"]["OPTIONS"]["location"]
    settings.STORAGES = {
        **settings.STORAGES,
        "sitemaps": {"BACKEND": "tests.seo.storages.FailingStorage", "OPTIONS": {"location": location}},
    }
    with pytest.raises(OSError, match="disk full"):
        generate_sitemaps(tenant_id=acme.pk)
    failed = SitemapGeneration.objects.latest("id")
    assert failed.status == "failed" and "disk full" in failed.error and not failed.published
    storage = storages["sitemaps"]
    assert not storage.exists(f"tenant-{acme.pk}/{failed.pk}/products-en-1.xml.gz")  # stored, then removed
    assert current_generation(acme.pk).pk == current.pk
    assert all(storage.exists(f["path"]) for f in current.files)


def test_a_second_generation_of_the_same_tenant_is_skipped(acme, shop):
    from broxiva.locks import acquire_lock, release_lock

    held = acquire_lock("sitemaps:generate", tenant=acme.pk, ttl_seconds=30)
    try:
        skipped = generate_sitemaps(tenant_id=acme.pk)
    finally:
        release_lock("sitemaps:generate", held.lock_id, tenant=acme.pk)
    assert skipped.status == "skipped" and not skipped.files and current_generation(acme.pk) is None
    assert generate_sitemaps(tenant_id=acme.pk).status == "succeeded"


def test_it_measures_without_storing_when_upload_is_off(acme, shop, sitemap_storage):
    generation = generate_sitemaps(tenant_id=acme.pk, upload_to_storage=False, ping_search_engines=True)
    assert generation.status == "succeeded" and not generation.published and generation.url_count == 7
    assert generation.indexnow_status == "skipped" and "upload_to_storage" in generation.indexnow_error
    assert all(f["path"] == "" and f["bytes"] > 0 for f in generation.files)
    assert not sitemap_storage.exists() or not any(sitemap_storage.rglob("*.gz"))
    assert current_generation(acme.pk) is None


def test_it_uses_the_earliest_verified_custom_domain(acme, shop):
    from domains.models import TenantDomain

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    TenantDomain.objects.create(tenant=acme, domain="shop.acme.test", token="t1", status="verified",
                                verified_at=now + dt.timedelta(days=2))
    TenantDomain.objects.create(tenant=acme, domain="www.acme.test", token="t2", status="verified", verified_at=now)
    TenantDomain.objects.create(tenant=acme, domain="old.acme.test", token="t3", status="pending")
    generation = generate_sitemaps(tenant_id=acme.pk)
    _, by_file = all_entries(generation)
    assert generation.host == "www.acme.test"
    assert all(loc.startswith("https://www.acme.test/") for urls in by_file.values() for loc in urls)
