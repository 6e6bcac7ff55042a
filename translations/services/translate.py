"""What a translation job does: group, reuse, chunk, call, verify, check, store.

One job translates its row together with the other drafts of the same entity and locale pair
(a product's title and description in one call). Identical texts go once. Segments are masked
(``translations.formatting``), packed into calls under ``TRANSLATION_MAX_INPUT_TOKENS`` and
``TRANSLATION_MAX_SEGMENTS_PER_CALL``, sent through the provider chain, restored, verified,
sanitised and checked; each chunk's rows are stored as soon as it answers, with a conditional
UPDATE (``status = DRAFT`` and the same source hash), so a newer draft is never overwritten by
an older answer and a re-run stores nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from broxiva.health import redact
from broxiva.locks import LockNotAcquired, with_lock
from broxiva.queues import policy
from translations import formatting, providers, quality
from translations.errors import TranslationDeferred, TranslationFailed
from translations.models import Translation, TranslationEvent
from translations.providers.base import SYSTEM_PROMPT, Provider, Request, estimate_tokens
from translations.providers.pseudo import FLAG as PSEUDO_FLAG
from translations.services import memory
from translations.services.lifecycle import evaluate

logger = logging.getLogger(__name__)
S = Translation.Status
GROUP_LIMIT = 50  # drafts of one entity translated together by one job


@dataclass
class Outcome:
    """One segment's translation, verified and checked (not stored yet)."""

    text: str
    flags: list[str] = field(default_factory=list)
    format_mismatch: bool = False
    score: int | None = None
    provider: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


def chunks(texts: list[str]) -> list[list[int]]:
    """Pack segment indices into calls under the token and segment budgets (order kept).

    A single segment over the budget goes alone: splitting it would cut its markup apart.
    """
    budget = settings.TRANSLATION_MAX_INPUT_TOKENS - estimate_tokens(SYSTEM_PROMPT) - 50
    most = settings.TRANSLATION_MAX_SEGMENTS_PER_CALL
    out: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i, text in enumerate(texts):
        cost = estimate_tokens(text) + 4  # quotes, comma, JSON escaping
        if current and (used + cost > budget or len(current) >= most):
            out.append(current)
            current, used = [], 0
        current.append(i)
        used += cost
    if current:
        out.append(current)
    return out


def max_output_tokens(texts: list[str]) -> int:
    estimate = sum(estimate_tokens(t) for t in texts)
    return min(settings.TRANSLATION_MAX_OUTPUT_TOKENS, 4 * estimate + 256)


def finish(source: str, masked: formatting.Masked, answer: str, *, source_locale: str, target_locale: str) -> Outcome:
    """Restore, verify, sanitise and check one answered segment."""
    restored = formatting.restore(masked, answer)
    clean, removed = formatting.sanitize(source, restored.text)
    compared = formatting.compare(source, clean)
    flags = list(dict.fromkeys(restored.flags + removed + compared))
    flags += quality.check(source=source, result=clean, source_locale=source_locale, target_locale=target_locale)
    return Outcome(text=clean, flags=flags, format_mismatch=bool(restored.flags or removed or compared))


def _judge(chain: list[Provider], request: Request, answers: list[str], outcomes: list[Outcome]) -> None:
    if not settings.TRANSLATION_QUALITY_JUDGE or chain[0].name == "pseudo":
        return
    try:
        scores = providers.call_chain(chain, lambda p: p.judge(request, answers))
    except (TranslationFailed, TranslationDeferred) as exc:
        logger.warning("translation quality judge failed: %s", redact(str(exc)))
        for outcome in outcomes:
            outcome.flags.append("the quality judge could not score this translation")
        return
    threshold = settings.TRANSLATION_QUALITY_THRESHOLD
    for outcome, score in zip(outcomes, scores, strict=True):
        outcome.score = score
        if score < threshold:
            outcome.flags.append(f"the quality judge scored it {score}/100 (below {threshold})")


def translate_texts(
    *, texts: list[str], source_locale: str, target_locale: str, content_type: str, chain: list[Provider]
) -> Iterator[tuple[list[int], list[Outcome]]]:
    """Yield (indices, outcomes) per call as each answers; raise the chain's error for a failed call."""
    masked = [formatting.mask(t) for t in texts]
    for indices in chunks([m.text for m in masked]):
        segments = [masked[i].text for i in indices]
        request = Request(source_locale, target_locale, content_type, tuple(segments))
        result = providers.translate(chain, request, max_tokens=max_output_tokens(segments))
        outcomes = [
            finish(texts[i], masked[i], answer, source_locale=source_locale, target_locale=target_locale)
            for i, answer in zip(indices, result.translations, strict=True)
        ]
        served = [p for p in chain if p.name == result.provider] or chain
        _judge(served, request, list(result.translations), outcomes)
        share = len(indices)
        for outcome in outcomes:
            outcome.provider, outcome.model = result.provider, result.model
            outcome.input_tokens = result.input_tokens // share
            outcome.output_tokens = result.output_tokens // share
            if result.provider == "pseudo":
                outcome.flags.insert(0, PSEUDO_FLAG)
        yield indices, outcomes


def store(row: Translation, outcome: Outcome, *, action: str = "translated", note: str = "") -> bool:
    """Move a DRAFT row to AUTO_TRANSLATED with its outcome; False if it is no longer that draft."""
    flags = list(dict.fromkeys(outcome.flags))
    needs_review = bool(flags) or (outcome.score is not None and outcome.score < settings.TRANSLATION_QUALITY_THRESHOLD)
    with transaction.atomic():
        updated = Translation.objects.filter(pk=row.pk, status=S.DRAFT, source_hash=row.source_hash).update(
            status=S.AUTO_TRANSLATED,
            translated_text=outcome.text,
            quality_flags=flags,
            needs_review=needs_review,
            format_mismatch=outcome.format_mismatch,
            quality_score=outcome.score,
            provider=outcome.provider,
            model=outcome.model[:100],
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            translated_at=timezone.now(),
            updated_at=timezone.now(),
            last_error="",
            batch=None,
        )
        if updated:
            TranslationEvent.objects.create(
                translation=row,
                action=action,
                from_status=S.DRAFT,
                to_status=S.AUTO_TRANSLATED,
                note=note or f"by {outcome.provider} {outcome.model}".strip(),
            )
    return bool(updated)


def record_error(rows: list[Translation], message: str) -> None:
    Translation.objects.filter(pk__in=[r.pk for r in rows], status=S.DRAFT).update(
        last_error=redact(message)[:2000], updated_at=timezone.now()
    )


def reuse_from_memory(rows: list[Translation]) -> list[Translation]:
    """Store what translation memory already has; return the rows still to translate."""
    left = []
    for row in rows:
        hit = memory.lookup(
            content_type=row.content_type,
            source_locale=row.source_locale,
            target_locale=row.target_locale,
            digest=row.source_hash,
        )
        if hit is None or hit["id"] == row.pk:
            left.append(row)
            continue
        flags, mismatch = evaluate(row, hit["text"])
        store(
            row,
            Outcome(text=hit["text"], flags=flags, format_mismatch=mismatch, provider="memory"),
            action="reused",
            note=f"identical source already approved in translation #{hit['id']}",
        )
    return left


def wire_content_type(rows: list[Translation]) -> str:
    kinds = sorted({r.content_type for r in rows})
    return kinds[0] if len(kinds) == 1 else "mixed: " + ", ".join(kinds)


def translate_rows(rows: list[Translation], *, preferred: str | None = None) -> dict[str, int]:
    """Translate DRAFT rows of one locale pair; store each call's results as they come.

    Raise ``TranslationDeferred`` (rate limited) or ``TranslationFailed`` after recording the
    failure in ``last_error`` of the rows not translated.
    """
    counts = {"reused": 0, "translated": 0}
    if not rows:
        return counts
    left = reuse_from_memory(rows)
    counts["reused"] = len(rows) - len(left)
    if not left:
        return counts
    texts = list(dict.fromkeys(r.source_text for r in left))  # identical texts go once
    by_text: dict[str, list[Translation]] = {}
    for row in left:
        by_text.setdefault(row.source_text, []).append(row)
    done: set[str] = set()
    chain = providers.chain(preferred)
    try:
        for indices, outcomes in translate_texts(
            texts=texts,
            source_locale=left[0].source_locale,
            target_locale=left[0].target_locale,
            content_type=wire_content_type(left),
            chain=chain,
        ):
            for i, outcome in zip(indices, outcomes, strict=True):
                done.add(texts[i])
                counts["translated"] += sum(store(r, outcome) for r in by_text[texts[i]])
    except (TranslationFailed, TranslationDeferred) as exc:
        pending = [r for r in left if r.source_text not in done]
        if isinstance(exc, TranslationFailed):
            record_error(pending, str(exc))
        else:
            record_error(pending, f"waiting: {exc}")
        raise
    return counts


def _lock_name(row: Translation) -> tuple[str, ...]:
    digest = hashlib.sha256(f"{row.tenant_id}\0{row.entity_id}\0{row.target_locale}".encode()).hexdigest()[:32]
    return ("translation", "entity", digest)


def translation_run(*, translation_id: int, source_hash: str, provider: str | None = None) -> dict[str, object]:
    """The job's service: translate a DRAFT row with its entity's other drafts (same locale pair)."""
    row = Translation.objects.filter(pk=translation_id).first()
    if row is None:
        return {"status": "skipped", "reason": "the translation no longer exists"}
    if row.source_hash != source_hash:
        return {"status": "skipped", "reason": "the source changed since this job was queued"}
    if row.status != S.DRAFT:
        return {"status": "skipped", "reason": f"the row is already {row.status}"}
    if row.batch_id:
        return {"status": "skipped", "reason": "the row waits in a provider batch"}
    try:
        # The lease outlives the longest run the queue allows (its timeout, QUEUE_OVERRIDES applied),
        # and no more: a job killed mid-run holds back its retry only until then.
        with with_lock(_lock_name(row), ttl_seconds=policy("translation").timeout + 60, wait_time_ms=0):
            group = list(
                Translation.objects.filter(
                    tenant_id=row.tenant_id,
                    entity_id=row.entity_id,
                    status=S.DRAFT,
                    source_locale=row.source_locale,
                    target_locale=row.target_locale,
                    batch__isnull=True,
                )
                .exclude(pk=row.pk)
                .order_by("pk")[: GROUP_LIMIT - 1]
            )
            counts = translate_rows([row, *group], preferred=provider)
    except LockNotAcquired:
        raise TranslationDeferred("translations", 5, "another job is translating this entity") from None
    row.refresh_from_db(fields=["status"])
    return {"status": row.status, "translation_id": row.pk, **counts}
