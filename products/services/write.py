"""Write one planned page: categories, the product upsert (``bulk``), variants, stock, conflicts,
and the hand-off of changed text to translations — one bulk statement per kind of write."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from django.db.models import Q
from django.utils import timezone

from products import fields as tracked
from products import handoff
from products.models import Category, Product, SourceConnection, SyncConflict, SyncRun, Variant
from products.services import bulk

if TYPE_CHECKING:
    from products.services.engine import PageResult, Plan


class _Text(NamedTuple):
    """What the hand-off reads of a written product (``handoff.request_product_translations``)."""

    pk: int
    title: str
    description: str


def write_page(plan: Plan, result: PageResult, connection: SourceConnection, run: SyncRun, *, full: bool,
               categories: dict[str, tuple[str, int]] | None = None) -> None:
    if plan.seen and full:
        Product.objects.filter(pk__in=plan.seen).update(last_seen_run=run)
    if not plan.rows:
        return
    category_ids = _upsert_categories(plan, result, connection, {} if categories is None else categories)
    ids, linked = bulk.upsert(
        tenant_id=connection.tenant_id,
        connection_id=connection.pk,
        rows=list(plan.rows.values()),
        links=[(ext, category_ids[cid]) for ext, pairs in plan.categories.items() for cid in dict(pairs)],
        unlink=[plan.stored[ext] for ext in plan.categories if ext not in plan.new],
        now=timezone.now(),
    )
    result.rows_written += len(ids) + linked
    _replace_variants(plan, result, ids)
    _update_stock(plan, result, ids)
    _record_conflicts(plan, ids, run)
    title, description = bulk.COLUMNS.index("title"), bulk.COLUMNS.index("description")
    changes: list[tuple[Any, list[str]]] = [
        (_Text(ids[ext], plan.rows[ext][title], plan.rows[ext][description]), names)
        for ext, names in plan.texts.items()
        if names
    ]
    if changes:
        result.translations += handoff.request_product_translations(tenant=connection.tenant, changes=changes)


def _upsert_categories(
    plan: Plan, result: PageResult, connection: SourceConnection, known: dict[str, tuple[str, int]]
) -> dict[str, int]:
    """Return the ids of the page's categories, writing only the new and the renamed ones.

    A catalogue has few categories and every page names them again: an upsert of all of them
    would rewrite the same rows page after page (dead tuples, WAL), so they are read first — or
    not at all when the run already stored every one of them under the same name (``known``,
    updated here).
    """
    wanted = {cid: name for pairs in plan.categories.values() for cid, name in pairs}
    if not wanted:
        return {}
    if all(known.get(cid, ("", 0))[0] == name for cid, name in wanted.items()):
        return {cid: known[cid][1] for cid in wanted}
    stored = {
        c.external_id: c
        for c in Category.objects.filter(connection=connection, external_id__in=list(wanted)).only(
            "id", "external_id", "name"
        )
    }
    renamed = [c for c in stored.values() if c.name != wanted[c.external_id]]
    for category in renamed:
        category.name = wanted[category.external_id]
    if renamed:
        Category.objects.bulk_update(renamed, ["name"])
    missing = [
        Category(tenant_id=connection.tenant_id, connection=connection, external_id=cid, name=name)
        for cid, name in wanted.items()
        if cid not in stored
    ]
    if missing:
        # Upsert all the same: a webhook's run and a sync of the connection never overlap (the
        # lock), but a conflict must not fail the page if they ever did.
        missing = Category.objects.bulk_create(
            missing, update_conflicts=True, unique_fields=["connection", "external_id"], update_fields=["name"]
        )
    result.rows_written += len(renamed) + len(missing)
    ids = {c.external_id: c.pk for c in [*stored.values(), *missing]}
    known.update((cid, (wanted[cid], pk)) for cid, pk in ids.items())
    return ids


def _replace_variants(plan: Plan, result: PageResult, ids: dict[str, int]) -> None:
    if not plan.variants:
        return
    rows = [
        Variant(
            product_id=ids[ext],
            external_id=v.external_id,
            sku=v.sku,
            title=v.title,
            price=v.price,
            inventory_quantity=v.inventory_quantity,
        )
        for ext, variants in plan.variants.items()
        for v in {v.external_id: v for v in variants}.values()
    ]
    kept = (
        Variant.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["product", "external_id"],
            update_fields=["sku", "title", "price", "inventory_quantity"],
        )
        if rows
        else []
    )
    # Variants the source no longer lists go (the product itself is only ever archived).
    replaced = [ids[ext] for ext in plan.variants if ext not in plan.new]
    if replaced:
        Variant.objects.filter(product_id__in=replaced).exclude(pk__in=[v.pk for v in kept]).delete()
    result.rows_written += len(kept)


def _update_stock(plan: Plan, result: PageResult, ids: dict[str, int]) -> None:
    if not plan.stock:
        return
    wanted = {(ids[ext], vid): qty for ext, stock in plan.stock.items() for vid, qty in stock.items()}
    match = Q()
    for product_id, vid in wanted:
        match |= Q(product_id=product_id, external_id=vid)
    variants = list(Variant.objects.filter(match).only("id", "product_id", "external_id"))
    for variant in variants:
        variant.inventory_quantity = wanted[(variant.product_id, variant.external_id)]
    Variant.objects.bulk_update(variants, ["inventory_quantity"])
    result.rows_written += len(variants)


def _record_conflicts(plan: Plan, ids: dict[str, int], run: SyncRun) -> None:
    if not plan.conflicts:
        return
    now = timezone.now()
    reopened = Q()
    rows = []
    for ext, name, local, source, kind in plan.conflicts:
        product_id = ids[ext]
        if kind == "open":
            reopened |= Q(product_id=product_id, field=name)
        rows.append(
            SyncConflict(
                product_id=product_id,
                run=run,
                field=name,
                local_value=tracked.as_text(local),
                source_value=tracked.as_text(source),
                status=SyncConflict.Status.OPEN if kind == "open" else SyncConflict.Status.RESOLVED,
                resolution="" if kind == "open" else kind,
                resolved_at=None if kind == "open" else now,
            )
        )
    if reopened:
        # The source moved again while staff had not decided: the newer source value replaces it.
        SyncConflict.objects.filter(reopened, status=SyncConflict.Status.OPEN).delete()
    SyncConflict.objects.bulk_create(rows)
