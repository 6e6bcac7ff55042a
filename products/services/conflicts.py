"""Staff decisions on conflicts flagged for review ("keep local" / "take source")."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from products import fields as tracked
from products.errors import SyncRefused
from products.models import Product, SyncConflict

logger = logging.getLogger(__name__)


def resolve_conflict(*, conflict_id: int, resolution: str) -> SyncConflict:
    """Close an open conflict: ``keep_local`` leaves the product as it is; ``take_source`` writes the
    source's value (and remembers it as synced, so the field is no longer a local edit)."""
    if resolution not in (SyncConflict.Resolution.KEEP_LOCAL, SyncConflict.Resolution.TAKE_SOURCE):
        raise SyncRefused(f"a conflict is resolved with keep_local or take_source, not {resolution!r}")
    with transaction.atomic():
        conflict = SyncConflict.objects.select_for_update().get(pk=conflict_id)
        if conflict.status != SyncConflict.Status.OPEN:
            raise SyncRefused(f"conflict {conflict_id} is already resolved ({conflict.resolution})")
        if resolution == SyncConflict.Resolution.TAKE_SOURCE:
            product = Product.objects.select_for_update().get(pk=conflict.product_id)
            value = tracked.canon(conflict.field, conflict.source_value)
            setattr(product, conflict.field, tracked.to_model(conflict.field, value))
            product.synced = {**product.synced, conflict.field: value}
            product.save()  # clears the field's local-edit stamp: it now equals the synced value
        conflict.status = SyncConflict.Status.RESOLVED
        conflict.resolution = resolution
        conflict.resolved_at = timezone.now()
        conflict.save(update_fields=["status", "resolution", "resolved_at"])
    logger.info(
        "product conflict resolved conflict=%s product=%s field=%s resolution=%s",
        conflict.pk,
        conflict.product_id,
        conflict.field,
        resolution,
    )
    return conflict
