"""Sitemaps: ``seo.services.generate_sitemaps`` against ``django.contrib.sitemaps`` on the same URLs.

    REDIS_PORT=6379 REDIS_DB=4 /work/venv/bin/python bench/bench_sitemaps.py [--products 1000000] [--baseline N]

One tenant, locales en, fr, de; ``--products`` active products, each with a published title in fr
and de (seeded once with COPY into ``BENCH_DATABASE_URL``, default ``broxiva_bench_sitemaps``,
created if missing, re-used when it already holds the catalogue): 3 URLs a product, each with
its four hreflang alternates (en, fr, de, x-default). Each contender runs in a child process of
its own; its peak RSS is that child's ``ru_maxrss`` (``os.wait4``, the per-child form of
``getrusage(RUSAGE_CHILDREN)``), its wall time measured inside the child from after Django's
setup to the last byte written.

1. **ours** — ``generate_sitemaps`` into a FileSystemStorage in a temporary directory: chunked
   reads, one translations query per chunk, lxml's streaming writer into gzip, 45,000 URLs a file,
   the index last.
2. **baseline** — ``django.contrib.sitemaps``: a ``Sitemap`` with ``i18n``, ``alternates`` and
   ``x_default`` over the same products (``items()`` the same queryset, ``lastmod`` the product's),
   every page (45,000 URLs, like ours) rendered with Django's own ``sitemap.xml`` template and
   written uncompressed. Generous to it: the paginator is built once for all pages (Django's view
   rebuilds the whole item list on every page request), and it asks no translation question (every
   product exists in every locale here, so the URLs are the same). ``--baseline N`` runs it on the
   first N products and scales its time linearly (said in the output); by default it runs on all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402  (after the path is set)

BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/broxiva_bench_sitemaps")
os.environ["DATABASE_URL"] = BENCH_DB
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("REDIS_DB", "4")
os.environ["DJANGO_SETTINGS_MODULE"] = "broxiva.settings"
LOCALES = ["en", "fr", "de"]
SLUG = "bench-sitemaps"


def seed(products: int) -> int:
    """Create (or re-use) the tenant and its catalogue; return the tenant's id."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection
    from django.utils import timezone

    from broxiva.models import Tenant
    from products.models import Product, SourceConnection
    from translations.models import Translation, source_hash

    tenant, _ = Tenant.objects.get_or_create(
        slug=SLUG, defaults={"name": "Bench", "default_locale": "en", "enabled_locales": LOCALES}
    )
    have = Product.objects.filter(tenant=tenant).count()
    if have == products:
        return tenant.pk
    print(f"seeding {products:,} products and {2 * products:,} published translations…", flush=True)
    Translation.objects.filter(tenant=tenant).delete()
    Product.objects.filter(tenant=tenant).delete()
    conn_row, _ = SourceConnection.objects.get_or_create(
        tenant=tenant, source="custom", defaults={"base_url": "https://feed.invalid/products.json"}
    )
    now = timezone.now()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            "COPY products_product (tenant_id, connection_id, external_id, title, description, handle, status, "
            "currency, synced, local_edited_at, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(products):
                copy.write_row((tenant.pk, conn_row.pk, f"ext-{i}", f"Product {i}", "", f"product-{i}", "active", "",
                                "{}", "{}", now, now))
        ids = list(Product.objects.filter(tenant=tenant).order_by("id").values_list("id", flat=True))
        with raw.copy(
            "COPY translations (tenant_id, content_type, entity_id, field_name, source_locale, target_locale, "
            "source_text, source_hash, translated_text, published_text, status, needs_review, quality_flags, "
            "format_mismatch, provider, model, input_tokens, output_tokens, job_id, last_error, published_at, "
            "created_at, updated_at) FROM STDIN"
        ) as copy:
            for pk in ids:
                text = f"Product {pk}"
                for locale in ("fr", "de"):
                    copy.write_row((tenant.pk, "product_title", str(pk), "title", "en", locale, text,
                                    source_hash(text), f"«{locale}» {text}", f"«{locale}» {text}", "PUBLISHED", False,
                                    "[]", False, "bench", "", 0, 0, "", "", now, now, now))
        cursor.execute("ANALYZE products_product")
        cursor.execute("ANALYZE translations")
    return tenant.pk


def child_ours(tenant_id: int, out: str) -> dict:
    os.environ["BROXIVA_VAR_DIR"] = out  # STORAGES["sitemaps"] is FileSystemStorage under it
    import django

    django.setup()
    from seo.services import generate_sitemaps

    setup_rss = _rss_mb()
    started = time.perf_counter()
    generation = generate_sitemaps(tenant_id=tenant_id)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "urls": generation.url_count, "files": len(generation.files),
            "bytes": generation.bytes, "status": generation.status, "setup_rss": setup_rss}


def _rss_mb() -> float:
    """This process's peak RSS so far (after Django's setup and the project's imports)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_django(tenant_id: int, out: str, limit: int | None) -> dict:
    import django

    django.setup()
    from functools import cached_property

    import django.contrib.sitemaps as contrib
    from django.contrib.sitemaps import Sitemap
    from django.core.paginator import Paginator
    from django.template import Context, Engine
    from django.utils import translation

    from products.models import Product

    class ProductSitemap(Sitemap):
        i18n = True
        languages = LOCALES
        alternates = True
        x_default = True
        limit = 45_000

        def items(self):
            rows = Product.objects.filter(tenant_id=tenant_id, status="active").order_by("id")
            rows = rows.only("id", "handle", "updated_at")
            return rows[:limit] if limit else rows

        def location(self, item):
            return f"/{translation.get_language()}/products/{item.handle}"

        def lastmod(self, item):
            return item.updated_at

        @cached_property
        def paginator(self):  # generous: built once, not once per page as the view does
            return Paginator(self._items(), self.limit)

    class Site:
        domain = "bench-sitemaps.broxiva.com"
        name = "bench"

    template = Engine(dirs=[str(Path(contrib.__file__).parent / "templates")]).get_template("sitemap.xml")
    setup_rss = _rss_mb()
    started = time.perf_counter()
    sitemap = ProductSitemap()
    urls = written = 0
    for page in sitemap.paginator.page_range:
        urlset = sitemap.get_urls(page=page, site=Site, protocol="https")
        body = template.render(Context({"urlset": urlset})).encode()
        with open(os.path.join(out, f"django-{page}.xml"), "wb") as fh:
            fh.write(body)
        urls += len(urlset)
        written += len(body)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "urls": urls, "files": sitemap.paginator.num_pages, "bytes": written,
            "setup_rss": setup_rss}


def run_child(*args: str) -> tuple[dict, float]:
    """Run this script as a child; return its result (with its CPU seconds) and its peak RSS in MB."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, cwd=ROOT)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child {args[1]} failed ({proc.returncode})")
    result = json.loads(output.decode().strip().splitlines()[-1])
    result["cpu"] = usage.ru_utime + usage.ru_stime  # the child's own CPU (not PostgreSQL's), setup included
    return result, usage.ru_maxrss / 1024  # KB on Linux


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=0, help="run the baseline on the first N products (scaled)")
    parser.add_argument("--child", choices=["ours", "django"])
    parser.add_argument("--tenant", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child == "ours":
        print(json.dumps(child_ours(args.tenant, args.out)))
        return
    if args.child == "django":
        print(json.dumps(child_django(args.tenant, args.out, args.baseline or None)))
        return

    ensure_database(BENCH_DB)
    started = time.perf_counter()
    tenant_id = seed(args.products)
    print(f"catalogue ready in {time.perf_counter() - started:.1f} s (tenant {tenant_id})", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-sitemaps-") as ours_dir, \
            tempfile.TemporaryDirectory(prefix="bench-django-sitemaps-") as django_dir:
        ours, ours_rss = run_child("--child", "ours", "--tenant", str(tenant_id), "--out", ours_dir)
        print(f"ours done: {json.dumps(ours)} peak RSS {ours_rss:.1f} MB", flush=True)
        base_args = ["--child", "django", "--tenant", str(tenant_id), "--out", django_dir]
        if args.baseline:
            base_args += ["--baseline", str(args.baseline)]
        base, base_rss = run_child(*base_args)
    scale = (args.products / args.baseline) if args.baseline else 1.0
    base_seconds = base["seconds"] * scale
    print(f"\n{args.products:,} products × {len(LOCALES)} locales = {ours['urls']:,} URLs "
          f"(each with {len(LOCALES) + 1} hreflang alternates)")
    print(f"ours:     {ours['seconds']:8.1f} s  peak RSS {ours_rss:7.1f} MB (after setup {ours['setup_rss']:.1f} MB, "
          f"+{ours_rss - ours['setup_rss']:.1f})  {ours['files']} files, "
          f"{ours['bytes'] / 1e6:,.0f} MB uncompressed, gzip")
    label = f"(ran on {args.baseline:,} products, time ×{scale:g})" if args.baseline else "(same URLs)"
    print(f"baseline: {base_seconds:8.1f} s  peak RSS {base_rss:7.1f} MB (after setup {base['setup_rss']:.1f} MB, "
          f"+{base_rss - base['setup_rss']:.1f})  {base['files']} files, {base['urls']:,} URLs {label}")
    if not args.baseline and base["urls"] != ours["urls"]:
        print(f"WARNING: URL counts differ: ours {ours['urls']:,}, baseline {base['urls']:,}")
    print(f"CPU (child process, setup included): ours {ours['cpu']:.1f} s, baseline {base['cpu'] * scale:.1f} s")
    print(f"speed-up: {base_seconds / ours['seconds']:.1f}× wall, {base['cpu'] * scale / ours['cpu']:.1f}× CPU "
          f"(target ≥ 10×); ours peak RSS target < 150 MB")


if __name__ == "__main__":
    main()
