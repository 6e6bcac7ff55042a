"""Store one page of source products: compare, resolve conflicts field by field, write in bulk.

The caller holds a transaction. The SQL round trips per page are a constant (a few: one read of
the page's stored products, then one bulk statement per kind of write, see ``write`` and
``bulk``), whatever the page's size; unchanged products are not written at all (a full sync
marks them seen with one UPDATE, so the rest can be archived at the end).

The stored products are read as plain values, not model instances: a product whose source
values (every tracked field, its categories and variants, in canonical form) equal what it was
last synced with, with the same source timestamp and no local-edit stamp, is unchanged whatever
its local values (``merge_field`` keeps local edits when the source did not move) — one dict
comparison. Only the others go through the field-by-field merge.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from products import fields as tracked
from products.models import ConflictResolution, Product, SourceConnection, SyncRun
from products.services import write
from products.services.bulk import COLUMNS
from products.sources.base import Skipped, SourceProduct

logger = logging.getLogger(__name__)

SKIPPED_KEPT = 1000  # a run lists at most this many skipped products (the count has them all)
STORED = ("id", "external_id", *tracked.FIELDS, "source_updated_at", "synced", "local_edited_at", "updated_at",
          "last_seen_run_id")  # fmt: skip


@dataclass
class PageResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    archived: int = 0
    conflicts: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    rows_written: int = 0  # product, variant, category and link rows written (the benchmark reads it)
    translations: int = 0

    def add(self, other: PageResult) -> None:
        for name in ("created", "updated", "unchanged", "archived", "conflicts", "rows_written", "translations"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.extend(other.skipped)


@dataclass
class Plan:
    """What one page will write."""

    rows: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # external id → product row (bulk.COLUMNS)
    stored: dict[str, int] = field(default_factory=dict)  # external id → id of the stored products in ``rows``
    categories: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # external id → [(cat id, name)]
    variants: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # external id → SourceVariants (replace)
    stock: dict[str, dict[str, int | None]] = field(default_factory=dict)  # external id → {variant id: qty}
    conflicts: list[tuple[str, str, Any, Any, str]] = field(default_factory=list)  # ext, field, local, source, kind
    texts: dict[str, list[str]] = field(default_factory=dict)  # external id → title/description changed
    seen: list[int] = field(default_factory=list)  # stored, unchanged product ids (full mode marks them)
    new: set[str] = field(default_factory=set)  # external ids created by this page (nothing to replace)


def apply_page(
    *,
    run: SyncRun,
    connection: SourceConnection,
    products: list[SourceProduct],
    skipped: list[Skipped] | None = None,
    strategy: str,
    full: bool = False,
    categories: dict[str, tuple[str, int]] | None = None,
) -> PageResult:
    """Store ``products`` (one page) for ``run``; return what happened. Call inside ``atomic()``.

    ``categories``: the run's own record of the categories it has stored so far (external id →
    (name, id)), carried from page to page so a page whose categories are all known and unrenamed
    reads none of them again. Drop it when a page fails: it may name rows that were rolled back.
    """
    result = PageResult(skipped=list(skipped or []))
    page: dict[str, SourceProduct] = {}
    for item in products:  # a product twice on a page: the newest wins
        if item.external_id not in page or item.updated_at >= page[item.external_id].updated_at:
            page[item.external_id] = item
    inventory = run.mode == "inventory_only"
    stored = (
        {
            values["external_id"]: values
            for values in Product.objects.select_for_update()
            .filter(connection=connection, external_id__in=list(page))
            .order_by()
            .values(*STORED)
        }
        if page
        else {}
    )
    plan = Plan()
    for external_id, item in page.items():
        current = stored.get(external_id)
        if inventory:
            if current is None:
                result.skipped.append(Skipped(external_id, "not stored yet: run a full or delta sync first"))
                continue
            _plan_inventory(plan, result, _instance(current), item, strategy, run)
        elif current is None:
            _plan_new(plan, result, connection, item, run if full else None)
        else:
            _plan_existing(plan, result, connection, current, item, strategy, run, full=full)
    write.write_page(plan, result, connection, run, full=full, categories=categories)
    if full and result.skipped:
        # A product the source has but we could not read this time is not gone: never archive it.
        ids = [s.external_id for s in result.skipped if s.external_id != "?"]
        Product.objects.filter(connection=connection, external_id__in=ids).update(last_seen_run=run)
    return result


# --- Planning (pure Python: no queries) ------------------------------------------------------


def _source_values(connection: SourceConnection, item: SourceProduct) -> dict[str, Any]:
    values = {name: tracked.canon(name, getattr(item, name)) for name in tracked.FIELDS}
    values["currency"] = values["currency"] or (connection.currency or "").upper()
    return values


def _snapshot(item: SourceProduct) -> tuple[list[str], list[list[Any]]]:
    categories = sorted({c.external_id for c in item.categories})
    variants = [
        [v.external_id, v.sku, v.title, tracked.canon_price(v.price), v.inventory_quantity] for v in item.variants
    ]
    return categories, variants


def _instance(values: dict[str, Any]) -> Product:
    """A stored product's values as an (unsaved, never saved) instance for the field-by-field merge."""
    return Product(**values)


def _row(product: Product) -> tuple[Any, ...]:
    return tuple(getattr(product, name) for name in COLUMNS)


def _plan_new(
    plan: Plan, result: PageResult, connection: SourceConnection, item: SourceProduct, seen_by: SyncRun | None
) -> None:
    values = _source_values(connection, item)
    categories, variants = _snapshot(item)
    synced = {**values, "categories": categories, "variants": variants}
    model = {name: tracked.to_model(name, value) for name, value in values.items()}
    model.update(external_id=item.external_id, source_updated_at=item.updated_at, synced=synced, local_edited_at={})
    model["last_seen_run_id"] = seen_by.pk if seen_by else None
    plan.rows[item.external_id] = tuple(model[name] for name in COLUMNS)
    if item.categories:
        plan.categories[item.external_id] = [(c.external_id, c.name) for c in item.categories]
    if item.variants:
        plan.variants[item.external_id] = item.variants
    plan.new.add(item.external_id)
    plan.texts[item.external_id] = [n for n in tracked.TEXT_FIELDS if values[n]]
    result.created += 1


def merge_field(
    *,
    name: str,
    local: Any,
    synced: Any,
    source: Any,
    strategy: str,
    source_updated_at: dt.datetime | None,
    local_edited_at: dt.datetime | None,
) -> tuple[Any, Any, str]:
    """Decide one field: return (value to keep, value to remember as synced, conflict kind or "").

    Edited locally: ``local != synced``; changed at the source: ``source != synced``. Only when
    both changed (to different values) is there a conflict, decided by ``strategy``.
    """
    if source == synced:
        return local, synced, ""  # nothing new at the source: a local edit (if any) stays
    if local in (synced, source):
        return source, source, ""
    if strategy == ConflictResolution.NEWEST_WINS:
        source_newer = source_updated_at is not None and (
            local_edited_at is None or source_updated_at > local_edited_at
        )
        strategy = ConflictResolution.SOURCE_WINS if source_newer else ConflictResolution.LOCAL_WINS
    if strategy == ConflictResolution.SOURCE_WINS:
        return source, source, "source_wins"
    if strategy == ConflictResolution.LOCAL_WINS:
        return local, source, "local_wins"
    # flag_for_review: the local value stays until staff choose; the source's is remembered so
    # the same source value does not raise the conflict again at every sync.
    return local, source, "open"


def _edited_at(product: Product, name: str) -> dt.datetime | None:
    stamp = (product.local_edited_at or {}).get(name)
    if stamp:
        try:
            return dt.datetime.fromisoformat(stamp)
        except ValueError:
            pass
    return product.updated_at


def _merge(
    plan: Plan,
    result: PageResult,
    current: Product,
    source_values: dict[str, Any],
    item: SourceProduct,
    strategy: str,
    run: SyncRun,
) -> tuple[list[str], dict[str, Any], dict[str, str]]:
    """Merge the tracked fields in ``source_values`` into ``current`` (in memory)."""
    synced = dict(current.synced or {})
    stamps = dict(current.local_edited_at or {})
    changed: list[str] = []
    for name, source in source_values.items():
        local = tracked.canon(name, getattr(current, name))
        value, remembered, kind = merge_field(
            name=name,
            local=local,
            synced=synced.get(name, local),
            source=source,
            strategy=strategy,
            source_updated_at=item.updated_at,
            local_edited_at=_edited_at(current, name),
        )
        synced[name] = remembered
        if kind:
            plan.conflicts.append((current.external_id, name, local, source, kind))
            result.conflicts += 1
        if value != local:
            setattr(current, name, tracked.to_model(name, value))
            changed.append(name)
        if value == remembered:
            stamps.pop(name, None)
    return changed, synced, stamps


def _plan_existing(
    plan: Plan,
    result: PageResult,
    connection: SourceConnection,
    stored: dict[str, Any],
    item: SourceProduct,
    strategy: str,
    run: SyncRun,
    *,
    full: bool,
) -> None:
    if stored["source_updated_at"] and item.updated_at < stored["source_updated_at"]:
        # Older than what we hold (a late webhook, a stale replica): nothing to learn from it.
        result.unchanged += 1
        plan.seen.append(stored["id"])
        return
    values = _source_values(connection, item)
    categories, variants = _snapshot(item)
    if (
        not stored["local_edited_at"]
        and stored["source_updated_at"] == item.updated_at
        and stored["synced"] == {**values, "categories": categories, "variants": variants}
    ):
        # Nothing moved at the source since the last sync: every field's merge would keep its
        # value (a local edit included) and remember the same synced value; nothing to write.
        result.unchanged += 1
        plan.seen.append(stored["id"])
        return
    current = _instance(stored)
    changed, synced, stamps = _merge(plan, result, current, values, item, strategy, run)
    if categories != synced.get("categories"):
        plan.categories[item.external_id] = [(c.external_id, c.name) for c in item.categories]
        synced["categories"] = categories
        changed.append("categories")
    if variants != synced.get("variants"):
        plan.variants[item.external_id] = item.variants
        synced["variants"] = variants
        changed.append("variants")
    bookkeeping = (
        synced != current.synced or stamps != current.local_edited_at or (current.source_updated_at != item.updated_at)
    )
    if changed:
        result.updated += 1
        plan.texts[item.external_id] = [n for n in tracked.TEXT_FIELDS if n in changed]
    else:
        result.unchanged += 1
    if changed or bookkeeping:
        current.synced, current.local_edited_at = synced, stamps
        current.source_updated_at = max(item.updated_at, current.source_updated_at or item.updated_at)
        if full:
            current.last_seen_run_id = run.pk
        plan.rows[item.external_id] = _row(current)
        plan.stored[item.external_id] = current.pk
    else:
        plan.seen.append(current.pk)


def _plan_inventory(
    plan: Plan,
    result: PageResult,
    current: Product,
    item: SourceProduct,
    strategy: str,
    run: SyncRun,
) -> None:
    """Quantities only: the product's and its variants' stock; nothing else is read or written."""
    changed, synced, stamps = _merge(
        plan,
        result,
        current,
        {"inventory_quantity": tracked.canon("inventory_quantity", item.inventory_quantity)},
        item,
        strategy,
        run,
    )
    stock = {v.external_id: v.inventory_quantity for v in item.variants}
    snapshot = [list(v) for v in synced.get("variants") or []]
    for entry in snapshot:
        if entry[0] in stock and entry[4] != stock[entry[0]]:
            entry[4] = stock[entry[0]]
            plan.stock.setdefault(current.external_id, {})[entry[0]] = stock[entry[0]]
    if current.external_id in plan.stock:
        synced["variants"] = snapshot
        changed.append("variants")
    if changed:
        result.updated += 1
    else:
        result.unchanged += 1
    if changed or synced != current.synced:
        current.synced, current.local_edited_at = synced, stamps
        plan.rows[current.external_id] = _row(current)
        plan.stored[current.external_id] = current.pk


def archive_missing(
    *, run: SyncRun, connection: SourceConnection, external_ids: list[str] | None = None, batch: int = 1000
) -> int:
    """Archive (never delete) the connection's products a full ``run`` did not see, or ``external_ids``.

    ``synced["status"]`` becomes ``archived`` too, so a product that comes back is taken as a
    change at the source. One SELECT and one UPDATE per ``batch`` products.
    """
    products = Product.objects.filter(connection=connection).exclude(status=Product.Status.ARCHIVED)
    if external_ids is None:
        products = products.exclude(last_seen_run=run)
    else:
        products = products.filter(external_id__in=external_ids)
    count = 0
    while True:
        chunk = list(products.select_for_update().only("id", "synced", "local_edited_at")[:batch])
        if not chunk:
            return count
        for product in chunk:
            product.status = Product.Status.ARCHIVED
            product.synced = {**(product.synced or {}), "status": Product.Status.ARCHIVED}
            product.local_edited_at = {k: v for k, v in (product.local_edited_at or {}).items() if k != "status"}
            product.updated_at = timezone.now()
        Product.objects.bulk_update(chunk, ["status", "synced", "local_edited_at", "updated_at"])
        count += len(chunk)
