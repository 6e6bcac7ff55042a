from __future__ import annotations

from translations import services
from translations.models import Translation, source_hash


def request(
    tenant,
    text: str = "Red cotton shirt",
    *,
    field: str = "title",
    entity: str = "p-1",
    content_type: str = "product_title",
    target: str = "fr",
    **kw,
) -> Translation:
    return services.request_translation(
        tenant_id=tenant.pk,
        content_type=content_type,
        entity_id=entity,
        field_name=field,
        source_locale="en",
        target_locale=target,
        source_text=text,
        **kw,
    )


def run(row: Translation) -> dict:
    """Do what the row's job does, in this process."""
    row.refresh_from_db()
    preferred = row.provider if row.status == Translation.Status.DRAFT and row.provider else None
    result = services.translation_run(
        translation_id=row.pk, source_hash=source_hash(row.source_text), provider=preferred
    )
    row.refresh_from_db()
    return result
