"""Translation memory: an identical source already approved or published for the same locale pair
and content type is reused without a call.

The memory is the ``translations`` table itself (index ``translations_memory`` on source hash,
locales and content type); the 24 h ``translation:`` cache in Redis sits in front of it and is
written when a row is approved or published, dropped when such a row is rejected, edited or
sent back to draft.
"""

from __future__ import annotations

from typing import Any

from broxiva import cache
from broxiva.keys import build_key
from translations.models import Translation

REUSABLE = (Translation.Status.VENDOR_APPROVED, Translation.Status.PUBLISHED)


def key(content_type: str, source_locale: str, target_locale: str, digest: str) -> str:
    return build_key("translation", "memory", content_type, source_locale, target_locale, digest)


def remember(row: Translation) -> None:
    if row.status in REUSABLE and row.translated_text:
        cache.set_value(
            key(row.content_type, row.source_locale, row.target_locale, row.source_hash),
            {"id": row.pk, "text": row.translated_text},
            category="translation",
        )


def forget_key(content_type: str, source_locale: str, target_locale: str, digest: str) -> None:
    cache.delete(key(content_type, source_locale, target_locale, digest))


def forget(row: Translation) -> None:
    forget_key(row.content_type, row.source_locale, row.target_locale, row.source_hash)


def lookup(*, content_type: str, source_locale: str, target_locale: str, digest: str) -> dict[str, Any] | None:
    """Return ``{"id", "text"}`` of a reusable translation, from Redis or the table, else None."""
    cache_key = key(content_type, source_locale, target_locale, digest)
    hit = cache.get_value(cache_key)
    if isinstance(hit, dict) and hit.get("text"):
        return hit
    row = (
        Translation.objects.filter(
            source_hash=digest,
            source_locale=source_locale,
            target_locale=target_locale,
            content_type=content_type,
            status__in=REUSABLE,
            needs_review=False,
        )
        .exclude(translated_text="")
        .order_by("-status", "-updated_at")
        .only("pk", "translated_text")
        .first()
    )
    if row is None:
        return None
    value = {"id": row.pk, "text": row.translated_text}
    cache.set_value(cache_key, value, category="translation")
    return value
