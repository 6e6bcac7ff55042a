"""The translation lifecycle as one state machine.

    request_translation ─► DRAFT ──(job)──► AUTO_TRANSLATED ──approve──► VENDOR_APPROVED ──publish──► PUBLISHED
                                 ◄─────────────── retranslate (any state but DRAFT) ────────────────┘
    reject: AUTO_TRANSLATED / VENDOR_APPROVED → REJECTED;  edit: any state but DRAFT → AUTO_TRANSLATED

Each move is one conditional UPDATE (``WHERE status = <the state we read>``), so two reviewers
clicking at once cannot both move a row; the loser gets ``InvalidTransition`` naming the state
the row is really in. Each move writes a ``TranslationEvent`` (who, when, from, to). Permissions
are checked here, not only in the admin: ``translations.approve_translation`` for approve,
reject, edit and re-translate; ``translations.publish_translation`` for publish.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from broxiva.queues import enqueue
from translations import formatting, quality
from translations.errors import InvalidTransition, NeedsReview
from translations.models import ContentType, Translation, TranslationEvent
from translations.services import memory

S = Translation.Status
APPROVE_PERM = "translations.approve_translation"
PUBLISH_PERM = "translations.publish_translation"

# action → (states it may start from, state it leads to, permission)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "approve": (frozenset({S.AUTO_TRANSLATED}), S.VENDOR_APPROVED, APPROVE_PERM),
    "publish": (frozenset({S.VENDOR_APPROVED}), S.PUBLISHED, PUBLISH_PERM),
    "reject": (frozenset({S.AUTO_TRANSLATED, S.VENDOR_APPROVED}), S.REJECTED, APPROVE_PERM),
    "edit": (
        frozenset({S.AUTO_TRANSLATED, S.VENDOR_APPROVED, S.PUBLISHED, S.REJECTED}),
        S.AUTO_TRANSLATED,
        APPROVE_PERM,
    ),
    "retranslate": (frozenset({S.AUTO_TRANSLATED, S.VENDOR_APPROVED, S.PUBLISHED, S.REJECTED}), S.DRAFT, APPROVE_PERM),
}


def allowed_actions(translation: Translation) -> list[str]:
    """Return the actions the state machine allows from the row's current state (buttons to show)."""
    actions = [a for a, (sources, _, _) in TRANSITIONS.items() if translation.status in sources]
    if translation.status == S.DRAFT and translation.last_error:
        actions.append("retranslate")  # a draft whose job failed may be sent again
    return actions


def _check_permission(user: Any, action: str) -> None:
    perm = TRANSITIONS[action][2]
    if user is None or not getattr(user, "is_active", False) or not user.has_perm(perm):
        raise PermissionDenied(f"{action} needs the {perm} permission")


def _move(
    translation_id: int,
    action: str,
    *,
    user: Any,
    note: str = "",
    extra: dict[str, Any] | None = None,
    check: Any = None,
) -> Translation:
    """Apply one transition with a conditional UPDATE; return the fresh row."""
    _check_permission(user, action)
    sources, target, _ = TRANSITIONS[action]
    with transaction.atomic():
        row = Translation.objects.select_for_update().get(pk=translation_id)
        allowed = row.status in sources or (action == "retranslate" and row.status == S.DRAFT and row.last_error)
        if not allowed:
            raise InvalidTransition(row.status, target, reason=f"{action} is not allowed from {row.status}")
        if check is not None:
            check(row)
        fields = {"status": target, "updated_at": timezone.now(), **(extra(row) if callable(extra) else extra or {})}
        updated = Translation.objects.filter(pk=row.pk, status=row.status).update(**fields)
        if not updated:  # pragma: no cover - the row lock makes this a belt-and-braces check
            raise InvalidTransition(row.status, target, reason="the row changed meanwhile")
        TranslationEvent.objects.create(
            translation=row,
            action=action,
            from_status=row.status,
            to_status=target,
            user=user,
            note=note(row) if callable(note) else note,
        )
        row.refresh_from_db()
    return row


def _require_reviewed(row: Translation) -> None:
    if row.format_mismatch:
        raise NeedsReview(
            row.status,
            S.VENDOR_APPROVED,
            reason="its formatting differs from the source; edit the text to fix it first",
        )


def approve(translation_id: int, *, user: Any) -> Translation:
    """AUTO_TRANSLATED → VENDOR_APPROVED. The reviewer's approval clears ``needs_review``, except
    for a formatting mismatch (missing or extra tags/placeholders), which only an edit can fix."""

    def note(row: Translation) -> str:
        cleared = "; ".join(row.quality_flags)
        return f"approved, review flags cleared: {cleared}" if row.needs_review and cleared else "approved"

    fields = {"needs_review": False, "reviewed_by": user, "reviewed_at": timezone.now()}
    row = _move(translation_id, "approve", user=user, extra=fields, check=_require_reviewed, note=note)
    memory.remember(row)
    return row


def publish(translation_id: int, *, user: Any) -> Translation:
    """VENDOR_APPROVED → PUBLISHED: the storefront's ``published_text`` becomes this translation."""
    now = timezone.now()

    def check(row: Translation) -> None:
        if row.needs_review or row.format_mismatch:
            raise NeedsReview(row.status, S.PUBLISHED, reason="it needs review: a reviewer must clear its flags first")

    def fields(row: Translation) -> dict[str, Any]:
        return {"published_text": row.translated_text, "published_at": now, "published_by": user}

    row = _move(translation_id, "publish", user=user, extra=fields, check=check, note="published")
    memory.remember(row)
    return row


def reject(translation_id: int, *, user: Any, reason: str) -> Translation:
    """AUTO_TRANSLATED / VENDOR_APPROVED → REJECTED, with the reviewer's reason."""
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise ValueError("a rejection needs a reason")
    row = _move(
        translation_id, "reject", user=user, note=reason, extra={"reviewed_by": user, "reviewed_at": timezone.now()}
    )
    memory.forget(row)
    return row


def evaluate(row: Translation, text: str) -> tuple[list[str], bool]:
    """Run the formatting comparison and the quality checks; return (flags, format_mismatch)."""
    format_flags = formatting.compare(row.source_text, text)
    flags = format_flags + quality.check(
        source=row.source_text, result=text, source_locale=row.source_locale, target_locale=row.target_locale
    )
    return flags, bool(format_flags)


def edit(translation_id: int, *, user: Any, text: str) -> Translation:
    """Replace the translation (sanitised like a model's), re-run the checks → AUTO_TRANSLATED.

    ``needs_review`` is cleared when the checks pass; the row still needs an approval.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the edited translation is empty")
    now = timezone.now()

    def fields(row: Translation) -> dict[str, Any]:
        clean, removed = formatting.sanitize(row.source_text, text)
        flags, mismatch = evaluate(row, clean)
        flags = removed + flags
        return {
            "translated_text": clean,
            "quality_flags": flags,
            "needs_review": bool(flags),
            "format_mismatch": mismatch or bool(removed),
            "quality_score": None,
            "provider": "manual",
            "model": "",
            "reviewed_by": user,
            "reviewed_at": now,
            "last_error": "",
        }

    row = _move(translation_id, "edit", user=user, extra=fields, note="edited")
    memory.forget(row)
    return row


def _enqueue(row: Translation) -> str:
    from translations.jobs import TranslationJobData, translate_job

    job_id = uuid.uuid4().hex
    # The payload's own job_id is the RQ job's id too (the payload goes positionally: enqueue's
    # job_id keyword would clash with the field).
    enqueue("translation", translate_job, TranslationJobData(**job_payload(row, job_id)), job_id=job_id)
    return job_id


def job_payload(row: Translation, job_id: str) -> dict[str, Any]:
    """The seed's TranslationJobData (snake_case) for a row, plus its id. No secrets in it."""
    return {
        "job_id": job_id,
        "tenant_id": row.tenant_id,
        "translation_id": row.pk,
        "source_locale": row.source_locale,
        "target_locale": row.target_locale,
        "content": {
            "type": row.content_type,
            "entity_id": row.entity_id,
            "field_name": row.field_name,
            "source_text": row.source_text,
        },
        "provider": row.provider if row.provider in ("anthropic", "openai") and row.status == S.DRAFT else None,
    }


def retranslate(translation_id: int, *, user: Any) -> Translation:
    """Any state but DRAFT → DRAFT and a new job; ``published_text`` stays on the storefront."""

    def fields(row: Translation) -> dict[str, Any]:
        return _draft_fields(None)

    with transaction.atomic():
        row = _move(translation_id, "retranslate", user=user, extra=fields, note="re-translate requested")
        job_id = _enqueue(row)
        Translation.objects.filter(pk=row.pk).update(job_id=job_id)
        row.job_id = job_id
    memory.forget_key(row.content_type, row.source_locale, row.target_locale, row.source_hash)
    return row


def _draft_fields(provider: str | None) -> dict[str, Any]:
    return {
        "status": S.DRAFT,
        "translated_text": "",
        "quality_flags": [],
        "quality_score": None,
        "needs_review": False,
        "format_mismatch": False,
        "provider": provider or "",
        "model": "",
        "input_tokens": 0,
        "output_tokens": 0,
        "last_error": "",
        "batch": None,
        "translated_at": None,
    }


def _clean_request(
    content_type: object, entity_id: object, field_name: object, source_text: object, provider: object
) -> tuple[str, str, str]:
    if content_type not in ContentType.values:
        raise ValueError(f"content_type {content_type!r} is not one of {', '.join(ContentType.values)}")
    if isinstance(entity_id, int) and not isinstance(entity_id, bool):
        entity_id = str(entity_id)
    if not isinstance(entity_id, str) or not entity_id.strip() or len(entity_id) > 255:
        raise ValueError("entity_id must be a non-empty string of at most 255 characters")
    if not isinstance(field_name, str) or not field_name.strip() or len(field_name) > 100:
        raise ValueError("field_name must be a non-empty string of at most 100 characters")
    if not isinstance(source_text, str) or not source_text.strip():
        raise ValueError("source_text must be a non-empty string")
    if provider not in (None, "anthropic", "openai"):
        raise ValueError(f"provider {provider!r} is not one of anthropic, openai")
    return entity_id.strip(), field_name.strip(), source_text


def request_translation(
    *,
    tenant_id: int,
    content_type: str,
    entity_id: str,
    field_name: str,
    source_locale: str,
    target_locale: str,
    source_text: str,
    provider: str | None = None,
) -> Translation:
    """Create or update the row as DRAFT and enqueue its job after the commit; return the row.

    An unchanged ``source_text`` (same locale pair) is a no-op: no job, no status change. A changed
    one starts a new draft; ``published_text`` stays until the new translation is published.
    Safe inside the caller's ``transaction.atomic()`` (the job goes through the outbox).
    The one-row form of ``request_translations`` (one implementation of the rules).
    """
    from translations.services import bulk  # bulk imports this module

    request = bulk.TranslationRequest(
        tenant_id=tenant_id,
        content_type=content_type,
        entity_id=entity_id,
        field_name=field_name,
        source_locale=source_locale,
        target_locale=target_locale,
        source_text=source_text,
        provider=provider,
    )
    return bulk.apply([bulk.clean(request)]).translations[0]
