"""The product upsert of a page: one COPY and one statement on PostgreSQL, ``bulk_create`` elsewhere.

On PostgreSQL the page's product rows (each with its category ids) are streamed with ``COPY``
into a session-local temporary table, then a single statement consumes them: it upserts the products
(``INSERT … ON CONFLICT (connection_id, external_id) DO UPDATE``), inserts the links of the
returned ids and returns ``(id, external_id)``. That replaces Django's ``bulk_create``, which on
PostgreSQL builds a model instance per row, prepares every value in Python and sends them as
``UNNEST`` arrays of text literals that psycopg escapes element by element (the largest cost of a
page in the profiles of bench/bench_products.py); ``COPY``'s row encoding is psycopg's C code.

The writes are the same: the same columns from the same values, ``updated_at`` set on every row
written, ``created_at`` only on new ones. The temporary table is created on first use in a
transaction (``IF NOT EXISTS``: no state is kept in Python, so a rolled-back page or a new
database connection cannot leave it missing), the statement empties it (``DELETE …
RETURNING``) and ``ON COMMIT DELETE ROWS`` is the backstop. Other databases (the embedded SQLite
mode) take the ORM path, which writes the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import nullcontext
from typing import Any

from django.db import connection as db

from products.models import Product

# The columns a planned row carries, in order (tenant, connection and the timestamps are the page's).
COLUMNS: tuple[str, ...] = (
    "external_id",
    "title",
    "description",
    "handle",
    "status",
    "price",
    "currency",
    "inventory_quantity",
    "source_updated_at",
    "synced",
    "local_edited_at",
    "last_seen_run_id",
)
TYPES = ("text", "text", "text", "text", "text", "numeric", "text", "integer", "timestamptz", "jsonb", "jsonb",
         "bigint")  # fmt: skip
UPDATED = [c for c in COLUMNS if c != "external_id"] + ["updated_at"]  # what an upsert of a stored product rewrites
ROWS = "_product_sync_rows"

_PREPARE = (
    "SET LOCAL client_min_messages TO WARNING; "  # no NOTICE for "already exists, skipping"
    f"CREATE TEMP TABLE IF NOT EXISTS {ROWS} ({', '.join(f'{c} {t}' for c, t in zip(COLUMNS, TYPES, strict=True))}, "
    "category_ids bigint[]) ON COMMIT DELETE ROWS"
)


def _upsert_sql() -> str:
    product = Product._meta.db_table
    link = Product.categories.through._meta.db_table
    # Every name is ours (the models' tables, COLUMNS); the values are parameters or COPY data.
    return f"""
        WITH src AS (DELETE FROM {ROWS} RETURNING *),
        up AS (
            INSERT INTO "{product}" (tenant_id, connection_id, {", ".join(COLUMNS)}, created_at, updated_at)
            SELECT %(tenant)s, %(connection)s, {", ".join(f"src.{c}" for c in COLUMNS)}, %(now)s, %(now)s FROM src
            ON CONFLICT (connection_id, external_id) DO UPDATE SET
                {", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATED)}
            RETURNING id, external_id
        ),
        wanted AS (SELECT external_id, unnest(category_ids) AS category_id FROM src),
        linked AS (
            INSERT INTO "{link}" (product_id, category_id)
            SELECT up.id, wanted.category_id FROM wanted JOIN up ON up.external_id = wanted.external_id
            ON CONFLICT DO NOTHING
            RETURNING 1
        )
        SELECT up.id, up.external_id, (SELECT count(*) FROM linked) FROM up
    """  # noqa: S608


def upsert(
    *,
    tenant_id: int,
    connection_id: int,
    rows: list[tuple[Any, ...]],
    links: list[tuple[str, int]],
    unlink: list[int],
    now: dt.datetime,
) -> tuple[dict[str, int], int]:
    """Upsert ``rows`` (tuples in ``COLUMNS`` order); replace the category links of the stored
    products ``unlink`` (ids) with ``links`` ``(external id, category id)``, adding those of new ones.

    Return ``{external id: product id}`` and the number of link rows inserted. Call inside ``atomic()``.
    """
    if db.vendor != "postgresql":
        return _upsert_orm(
            tenant_id=tenant_id, connection_id=connection_id, rows=rows, links=links, unlink=unlink, now=now
        )
    link = Product.categories.through._meta.db_table
    with db.cursor() as cursor:
        cursor.execute(_PREPARE)
        if unlink:
            cursor.execute(f'DELETE FROM "{link}" WHERE product_id = ANY(%s)', [unlink])  # noqa: S608 -- our table
        categories: dict[str, list[str]] = {}
        for external_id, category_id in links:
            categories.setdefault(external_id, []).append(str(int(category_id)))
        _copy(
            cursor,
            f"COPY {ROWS} ({', '.join(COLUMNS)}, category_ids) FROM STDIN",
            [_encoded(row, categories.get(row[0])) for row in rows],
        )
        cursor.execute(_upsert_sql(), {"tenant": tenant_id, "connection": connection_id, "now": now})
        returned = cursor.fetchall()
    return {external_id: pk for pk, external_id, _ in returned}, (returned[0][2] if returned else 0)


def _encoded(row: tuple[Any, ...], category_ids: list[str] | None) -> tuple[Any, ...]:
    # The two JSON columns as JSON text (what JSONField stores) and the ids as an array literal
    # (integers only: nothing to escape; psycopg's list dumper is Python, element by element);
    # COPY's text format takes the rest as they are.
    ids = "{" + ",".join(category_ids) + "}" if category_ids else None
    return (*row[:9], json.dumps(row[9]), json.dumps(row[10]), row[11], ids)


def _copy(cursor: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """``COPY … FROM STDIN`` through Django's execute wrappers, so that query counters and
    instrumentation (``connection.execute_wrapper``, bench/bench_products.py) see it as a query."""

    def run(sql: str, params: Any, many: bool, context: dict[str, Any]) -> None:
        with context["cursor"].cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    # Django's own dispatch through the wrappers (stable since 2.0); CursorWrapper has no copy().
    # Under DEBUG (or CaptureQueriesContext) the COPY is logged in connection.queries like a query.
    with cursor.debug_sql(sql) if hasattr(cursor, "debug_sql") else nullcontext():
        cursor._execute_with_wrappers(sql, None, False, executor=run)


def _upsert_orm(
    *,
    tenant_id: int,
    connection_id: int,
    rows: list[tuple[Any, ...]],
    links: list[tuple[str, int]],
    unlink: list[int],
    now: dt.datetime,
) -> tuple[dict[str, int], int]:
    """The same writes through ``bulk_create`` (databases other than PostgreSQL)."""
    link = Product.categories.through
    if unlink:
        link.objects.filter(product_id__in=unlink).delete()
    products = [
        Product(tenant_id=tenant_id, connection_id=connection_id, **dict(zip(COLUMNS, row, strict=True)))
        for row in rows
    ]
    saved = Product.objects.bulk_create(
        products,
        update_conflicts=True,
        unique_fields=["connection", "external_id"],
        update_fields=[name.removesuffix("_id") for name in UPDATED],
    )
    ids = {p.external_id: p.pk for p in saved}
    if saved and None in ids.values():  # a backend that does not return the ids of upserted rows
        ids = dict(
            Product.objects.filter(connection_id=connection_id, external_id__in=list(ids)).values_list(
                "external_id", "id"
            )
        )
    made = link.objects.bulk_create(
        [link(product_id=ids[ext], category_id=cid) for ext, cid in links], ignore_conflicts=True
    )
    return ids, len(made)
