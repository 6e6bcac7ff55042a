"""Reads that other places need: what the storefront shows."""

from __future__ import annotations

from collections.abc import Iterable

from translations.models import Translation


def published_texts(
    *, tenant_id: int, target_locale: str, entity_ids: Iterable[str], content_types: Iterable[str] | None = None
) -> dict[tuple[str, str, str], str]:
    """Return ``{(content_type, entity_id, field_name): published_text}`` for a page of entities, in one query.

    Only rows with a published text appear; a row being re-translated keeps serving its last
    published text, so the storefront never shows a draft.
    """
    rows = Translation.objects.filter(
        tenant_id=tenant_id, target_locale=target_locale, entity_id__in=[str(e) for e in entity_ids]
    ).exclude(published_text="")
    if content_types is not None:
        rows = rows.filter(content_type__in=list(content_types))
    return {
        (ct, entity, field): text
        for ct, entity, field, text in rows.values_list("content_type", "entity_id", "field_name", "published_text")
    }
