"""Product sync: the project's page-at-a-time bulk upserts against ``update_or_create`` per product.

    REDIS_PORT=6379 REDIS_DB=4 /work/venv/bin/python bench/bench_products.py [--products 100000] [--baseline 5000] \
        [--locales en,fr,de] [--profile PATH]

A local WooCommerce-shaped server (``tests/products/woo_server.py``) builds each page of
``--products`` products on the fly (100 a page, one category each, the REST API's JSON). Then,
each on an empty connection of its own, for a tenant with ``--locales`` enabled (default en, fr, de:
every new title and description is handed to translations for fr and de, so the hand-off is
measured too; ``--locales en`` measures the sync alone):

1. **ours** — a full sync through the real path (``products.services.sync_run``: the WooCommerce
   source, the guarded HTTP client, the page engine, and the hand-off: one
   ``translations.services.request_translations`` call per page): wall time and SQL queries;
2. **baseline** — the same pages fetched and parsed by the same source, each product then stored
   with ``Product.objects.update_or_create`` (+ ``Category.objects.get_or_create`` and
   ``product.categories.set``), the usual per-row code, and its text handed off with one
   ``request_translation`` per (field, other locale) as the sync did before, a page per
   transaction. It runs on the first ``--baseline``
   products only and is **extrapolated** linearly to ``--products`` (said in the output);
3. **unchanged delta** — a second sync of ours over the same, unchanged catalogue (the server
   ignores ``modified_after``, so every product is read and compared again): rows written must be 0.

Only the bench database (``BENCH_DATABASE_URL``, default ``broxiva_bench_products``, created if
missing), the ``lock:products:*`` keys of ``REDIS_DB`` and the translation jobs of the queues
under ``QUEUE_PREFIX=bench-products`` (emptied at the end; no worker runs them) are written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402  (after the path is set)

BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/broxiva_bench_products")
os.environ["DATABASE_URL"] = BENCH_DB
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("DEBUG", "false")
os.environ["OUTBOUND_ALLOWED_NETWORKS"] = "127.0.0.0/8"  # the local shop
os.environ["PRODUCT_SYNC_PAGE_SIZE"] = "100"
os.environ["PRODUCT_SYNC_JOB_BUDGET_SECONDS"] = "100000"  # one job: the bench times the engine, not hand-overs
# The budget is also capped at 2/3 of the queue's timeout: a slow (loaded) machine must not hand over.
os.environ["QUEUE_OVERRIDES"] = '{"product-sync": {"timeout": 200000}}'
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["QUEUE_PREFIX"] = "bench-products"  # the hand-off's translation jobs stay apart, emptied at the end
os.environ["DJANGO_SETTINGS_MODULE"] = "broxiva.settings"

TABLES = ["products_product", "products_variant", "products_category", "products_product_categories"]




def _generate(index: int) -> dict:
    from tests.products.woo_server import woo_product

    return woo_product(index + 1, categories=[{"id": index % 50, "name": f"Category {index % 50}"}])


def _serve(total, ready, commands) -> None:  # the shop's own process
    from tests.products.woo_server import WooShop

    shop = WooShop(generate=_generate, total=total.value)
    ready.put(shop.url)
    while (command := commands.get()) is not None:
        shop.total = command
    shop.close()


class RemoteShop:
    """The WooCommerce-shaped server in a process of its own: building and encoding its pages is
    the shop's work, not the sync's, so it must not compete for this process's GIL."""

    def __init__(self, total: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self.ready, self.commands = context.Queue(), context.Queue()
        self.process = context.Process(
            target=_serve, args=(context.Value("i", total), self.ready, self.commands), daemon=True
        )
        self.process.start()
        self.url = self.ready.get(timeout=30)

    @property
    def total(self) -> None:
        raise AttributeError("write-only")

    @total.setter
    def total(self, value: int) -> None:
        self.commands.put(value)
        time.sleep(0.2)  # let the shop take it before the next request

    def close(self) -> None:
        self.commands.put(None)
        self.process.join(10)


class Counter:
    def __init__(self) -> None:
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):  # django's execute_wrapper (COPY included)
        self.queries += 1
        return execute(sql, params, many, context)


def tuples_written() -> int:
    """Rows inserted, updated or deleted in the product tables so far, by PostgreSQL's own counters
    (whatever the statement: a CTE, a COPY-fed upsert, the ORM), this connection's flushed first."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # PostgreSQL 15+; applied when this query ends
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
            " WHERE relname = ANY(%s)",
            [TABLES],
        )
        return int(cursor.fetchone()[0])


@contextmanager
def measured():
    from django.db import connection

    counter = Counter()
    before = tuples_written()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        yield counter
    counter.seconds = time.perf_counter() - started
    counter.rows_written = tuples_written() - before


@contextmanager
def profiled(path: str | None):
    if not path:
        yield
        return
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=5_000)
    parser.add_argument("--locales", default="en,fr,de", help="the tenant's enabled locales, the default first")
    parser.add_argument("--profile", metavar="PATH", help="write a cProfile of ours' full sync to PATH (slows it)")
    args = parser.parse_args()
    locales = [loc.strip() for loc in args.locales.split(",") if loc.strip()]
    ensure_database(BENCH_DB)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from django.db import transaction

    from broxiva.models import Tenant
    from broxiva.queues import get_queue
    from products.models import Category, Product, SourceConnection, SyncRun
    from products.services import sync_run
    from products.services.runs import source_connection
    from products.sources import get_source
    from tests.products.woo_server import KEY, SECRET
    from translations.models import Translation
    from translations.services import request_translation

    Tenant.objects.filter(slug="bench-products").delete()
    tenant = Tenant.objects.create(
        slug="bench-products", name="Bench", default_locale=locales[0], enabled_locales=locales
    )
    targets = locales[1:]

    shop = RemoteShop(args.products)
    credentials = {"consumer_key": KEY, "consumer_secret": SECRET}

    def connection(name: str) -> SourceConnection:
        return SourceConnection.objects.create(
            tenant=tenant, name=name, source="woocommerce", base_url=shop.url, currency="EUR", credentials=credentials
        )

    try:
        ours = connection("ours")
        run = SyncRun.objects.create(connection=ours, mode="full")
        with measured() as full, profiled(args.profile):
            result = sync_run(run_id=run.pk)
        assert result["status"] == "succeeded" and result["created"] == args.products, result
        pages = result["pages"]
        ours_translations = Translation.objects.filter(tenant=tenant).count()
        assert ours_translations == args.products * 2 * len(targets), ours_translations

        base = connection("baseline")
        shop.total = args.baseline
        source, conn = get_source("woocommerce"), source_connection(base)
        with measured() as baseline:
            cursor, stored = None, 0
            while True:
                page = source.fetch_page(conn, mode="full", since=None, cursor=cursor)
                with transaction.atomic():  # the hand-off's jobs go through the outbox, as in the sync
                    for item in page.products:
                        product, _ = Product.objects.update_or_create(
                            connection=base,
                            external_id=item.external_id,
                            defaults={
                                "tenant": tenant,
                                "title": item.title,
                                "description": item.description,
                                "handle": item.handle,
                                "status": item.status,
                                "price": item.price,
                                "currency": item.currency,
                                "inventory_quantity": item.inventory_quantity,
                                "source_updated_at": item.updated_at,
                            },
                        )
                        categories = [
                            Category.objects.get_or_create(
                                connection=base, external_id=c.external_id, defaults={"tenant": tenant, "name": c.name}
                            )[0]
                            for c in item.categories
                        ]
                        product.categories.set(categories)
                        for name in ("title", "description"):  # the per-row hand-off the sync had
                            text = getattr(product, name)
                            for target in targets if text and text.strip() else ():
                                request_translation(
                                    tenant_id=tenant.id,
                                    content_type=f"product_{name}",
                                    entity_id=str(product.pk),
                                    field_name=name,
                                    source_locale=locales[0],
                                    target_locale=target,
                                    source_text=text,
                                )
                        stored += 1
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        assert stored == args.baseline

        shop.total = args.products
        again = SyncRun.objects.create(connection=ours, mode="delta")
        with measured() as delta:
            second = sync_run(run_id=again.pk)
        assert second["unchanged"] == args.products, second
    finally:
        shop.close()
        get_queue("translation").empty()

    scale = args.products / args.baseline
    base_seconds, base_queries = baseline.seconds * scale, baseline.queries * scale
    print(f"product sync, {args.products:,} products from a local WooCommerce-shaped server, {pages} pages of 100")
    print(
        f"  locales {', '.join(locales)}: {len(targets) * 2} translation requests per new product "
        f"({ours_translations:,} rows drafted by ours)"
    )
    print(
        f"  ours (bulk upserts)       : {full.seconds:8.1f} s  {full.queries:9,} SQL queries "
        f"({full.queries / pages:.1f} per page)  {args.products / full.seconds:8,.0f} products/s, "
        f"{full.rows_written:,} rows written"
    )
    print(
        f"  baseline update_or_create : {base_seconds:8.1f} s  {base_queries:9,.0f} SQL queries "
        f"(extrapolated x{scale:g} from {args.baseline:,} products: {baseline.seconds:.1f} s, "
        f"{baseline.queries:,} queries)  {args.baseline / baseline.seconds:8,.0f} products/s"
    )
    print(
        f"  speed-up                  : {base_seconds / full.seconds:8.1f}x  (target >= 20x); "
        f"queries {base_queries / full.queries:,.0f}x fewer"
    )
    print(
        f"  unchanged delta (ours)    : {delta.seconds:8.1f} s  {delta.queries:9,} SQL queries "
        f"({delta.queries / pages:.1f} per page)  rows written = {delta.rows_written}"
    )


if __name__ == "__main__":
    main()
