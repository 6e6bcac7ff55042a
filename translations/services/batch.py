"""Large backlogs through the providers' batch APIs: one submission, a periodic poll, results by
``custom_id`` whatever their order, failed items retried singly.

``translate_catalog`` makes sure every source entry of a tenant has a row in each target locale,
reuses translation memory, and then either submits one batch (Anthropic Message Batches or
OpenAI's Batch API, the first batch-capable provider of the chain) when more than
``TRANSLATION_BATCH_MIN`` segments wait, or enqueues ordinary jobs (one per entity and locale:
the job takes the entity's other drafts along).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from broxiva.health import redact
from broxiva.locks import LockNotAcquired, with_lock
from broxiva.models import Tenant
from broxiva.queues import enqueue_many
from translations import formatting, providers
from translations.errors import ProviderError
from translations.locales import check_locale
from translations.models import ContentType, Translation, TranslationBatch
from translations.providers.base import Request
from translations.services.lifecycle import job_payload
from translations.services.translate import chunks, finish, max_output_tokens, reuse_from_memory, store

logger = logging.getLogger(__name__)
S = Translation.Status


def _ensure_rows(tenant: Tenant, target_locales: list[str], content_types: list[str]) -> int:
    """Create the missing DRAFT rows from each source entry's latest row; return how many."""
    latest = (
        Translation.objects.filter(tenant=tenant, content_type__in=content_types)
        .values("content_type", "entity_id", "field_name")
        .annotate(last=Max("pk"))
    )
    sources = Translation.objects.filter(pk__in=[e["last"] for e in latest]).only(
        "content_type", "entity_id", "field_name", "source_locale", "source_text", "source_hash"
    )
    new = [
        Translation(
            tenant=tenant,
            content_type=s.content_type,
            entity_id=s.entity_id,
            field_name=s.field_name,
            source_locale=s.source_locale,
            target_locale=locale,
            source_text=s.source_text,
            source_hash=s.source_hash,
        )
        for s in sources.iterator()
        for locale in target_locales
        if locale != s.source_locale
    ]
    created = Translation.objects.bulk_create(new, ignore_conflicts=True, batch_size=1000)
    return len(created)


def _batch_provider() -> providers.Provider | None:
    for provider in providers.chain():
        if hasattr(provider, "batch_submit"):
            return provider
    return None


def _enqueue_singles(rows: list[Translation], *, per_entity: bool) -> int:
    from translations.jobs import translate_job

    seen: set[tuple[str, str, str]] = set()
    payloads = []
    for row in rows:
        group = (row.entity_id, row.source_locale, row.target_locale)
        if per_entity and group in seen:
            continue
        seen.add(group)
        payloads.append(job_payload(row, uuid.uuid4().hex))
    if payloads:
        enqueue_many("translation", translate_job, payloads)
    return len(payloads)


def translate_catalog(
    *, tenant_id: int, target_locales: list[str], content_types: list[str] | None = None
) -> dict[str, Any]:
    """Translate a tenant's whole catalogue into ``target_locales``; return what was done."""
    tenant = Tenant.objects.get(pk=tenant_id)
    locales = list(dict.fromkeys(check_locale(loc) for loc in target_locales))
    if not locales:
        raise ValueError("give at least one target locale")
    kinds = list(content_types or ContentType.values)
    unknown = [k for k in kinds if k not in ContentType.values]
    if unknown:
        raise ValueError(f"unknown content types: {', '.join(map(str, unknown))}")
    created = _ensure_rows(tenant, locales, kinds)
    waiting = list(
        Translation.objects.filter(
            tenant=tenant, target_locale__in=locales, content_type__in=kinds, status=S.DRAFT, batch__isnull=True
        ).order_by("pk")
    )
    left = reuse_from_memory(waiting)
    result: dict[str, Any] = {
        "created": created,
        "waiting": len(waiting),
        "reused": len(waiting) - len(left),
        "batch": None,
        "jobs": 0,
    }
    segments = len({(r.source_locale, r.target_locale, r.source_hash) for r in left})
    provider = _batch_provider()
    if segments > settings.TRANSLATION_BATCH_MIN and provider is not None:
        batch = submit_batch(tenant, left, provider)
        if batch is not None:
            result["batch"] = batch.pk
            return result
    result["jobs"] = _enqueue_singles(left, per_entity=True)
    return result


def _requests(rows: list[Translation]) -> tuple[dict[str, Any], dict[str, tuple[Request, int]]]:
    """Build the batch's requests: per locale pair, identical texts once, chunked like a job's calls."""
    plan: dict[str, Any] = {}
    calls: dict[str, tuple[Request, int]] = {}
    pairs: dict[tuple[str, str], dict[str, list[Translation]]] = {}
    for row in rows:
        pairs.setdefault((row.source_locale, row.target_locale), {}).setdefault(row.source_text, []).append(row)
    n = 0
    for (source_locale, target_locale), by_text in pairs.items():
        texts = list(by_text)
        masked = [formatting.mask(t).text for t in texts]
        for indices in chunks(masked):
            n += 1
            custom_id = f"c{n}"
            kinds = sorted({r.content_type for i in indices for r in by_text[texts[i]]})
            segments = [masked[i] for i in indices]
            kind = kinds[0] if len(kinds) == 1 else "mixed: " + ", ".join(kinds)
            request = Request(source_locale, target_locale, kind, tuple(segments))
            calls[custom_id] = (request, max_output_tokens(segments))
            plan[custom_id] = [[r.pk for r in by_text[texts[i]]] for i in indices]
    return plan, calls


def submit_batch(tenant: Tenant, rows: list[Translation], provider: providers.Provider) -> TranslationBatch | None:
    """Claim the rows for a new batch and submit it; on failure release them and return None."""
    plan, calls = _requests(rows)
    with transaction.atomic():
        batch = TranslationBatch.objects.create(
            tenant=tenant, provider=provider.name, model=provider.model_name(), requests=plan
        )
        ids = [i for segs in plan.values() for seg in segs for i in seg]
        Translation.objects.filter(pk__in=ids, status=S.DRAFT, batch__isnull=True).update(batch=batch)
    try:
        providers.pace(provider)
        external_id, file_id = provider.batch_submit(calls)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - any failure releases the rows to ordinary jobs
        message = redact(str(exc))[:2000] if isinstance(exc, ProviderError) else f"submit failed: {type(exc).__name__}"
        logger.warning("translation batch submit failed tenant=%s provider=%s: %s", tenant.slug, provider.name, message)
        TranslationBatch.objects.filter(pk=batch.pk).update(
            status=TranslationBatch.Status.FAILED, last_error=message, ended_at=timezone.now()
        )
        Translation.objects.filter(batch=batch).update(batch=None)
        return None
    TranslationBatch.objects.filter(pk=batch.pk).update(external_id=external_id, input_file_id=file_id)
    batch.external_id, batch.input_file_id = external_id, file_id
    logger.info(
        "translation batch submitted tenant=%s provider=%s id=%s requests=%d rows=%d",
        tenant.slug,
        provider.name,
        external_id,
        len(calls),
        len(rows),
    )
    return batch


def _apply(batch: TranslationBatch, provider: providers.Provider, results: dict[str, Any]) -> tuple[int, int]:
    rows = {r.pk: r for r in Translation.objects.filter(batch=batch)}
    ok = failed = 0
    retry: list[Translation] = []
    for custom_id, segments in batch.requests.items():
        answer = results.get(custom_id)
        members = [[rows[i] for i in seg if i in rows] for seg in segments]
        outcome_rows: list[tuple[Translation, Any]] = []
        try:
            if answer is None:
                raise ProviderError(provider.name, "no result for this request", kind="bad_answer")
            if isinstance(answer, ProviderError):
                raise answer
            result = provider.result(answer, len(segments))  # type: ignore[attr-defined]
            for seg_rows, text in zip(members, result.translations, strict=True):
                if not seg_rows:
                    continue
                first = seg_rows[0]
                outcome = finish(
                    first.source_text,
                    formatting.mask(first.source_text),
                    text,
                    source_locale=first.source_locale,
                    target_locale=first.target_locale,
                )
                outcome.provider, outcome.model = provider.name, result.model
                outcome_rows.extend((r, outcome) for r in seg_rows)
        except ProviderError as exc:
            logger.info("translation batch item failed batch=%s custom_id=%s: %s", batch.external_id, custom_id, exc)
            failed += sum(len(m) for m in members)
            retry.extend(r for m in members for r in m)
            continue
        for row, outcome in outcome_rows:
            ok += store(row, outcome, action="translated", note=f"by {provider.name} batch {batch.external_id}")
    if retry:
        Translation.objects.filter(pk__in=[r.pk for r in retry], status=S.DRAFT).update(batch=None)
        for row in retry:
            row.batch_id = None
        _enqueue_singles(retry, per_entity=False)
    return ok, failed


def batch_poll() -> dict[str, Any]:
    """Check every submitted batch once; apply those that ended. Safe to run on many workers."""
    report: dict[str, Any] = {"checked": 0, "ended": 0, "translated": 0, "retried": 0}
    for batch in TranslationBatch.objects.filter(status=TranslationBatch.Status.SUBMITTED).exclude(external_id=""):
        report["checked"] += 1
        try:
            with with_lock(("translation", "batch", str(batch.pk)), ttl_seconds=240, wait_time_ms=0):
                batch.refresh_from_db()
                if batch.status != TranslationBatch.Status.SUBMITTED:
                    continue
                provider = providers.get(batch.provider)
                try:
                    results = provider.batch_results(batch.external_id, batch.input_file_id)  # type: ignore
                except ProviderError as exc:
                    TranslationBatch.objects.filter(pk=batch.pk).update(last_error=redact(str(exc))[:2000])
                    continue
                if results is None:
                    continue
                ok, failed = _apply(batch, provider, results)
                TranslationBatch.objects.filter(pk=batch.pk).update(
                    status=TranslationBatch.Status.ENDED, succeeded=ok, failed=failed, ended_at=timezone.now()
                )
                report["ended"] += 1
                report["translated"] += ok
                report["retried"] += failed
        except LockNotAcquired:
            continue
    return report
