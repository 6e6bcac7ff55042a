"""Set-based translation requests: ``request_translations`` (the product sync's hand-off).

The same semantics as ``request_translation`` row by row, in a constant number of SQL round
trips whatever the number of requests: one SELECT of the tenants, one SELECT ... FOR UPDATE of
the rows already stored under the requested keys, one INSERT ... ON CONFLICT DO NOTHING of the
new rows and one SELECT to read their ids back (a concurrent request may have inserted one of
them meanwhile: such a row is then treated like a stored one), one UPDATE for the rows whose
source changed, one INSERT of events and one outbox INSERT for the jobs.

Jobs are coalesced: ``translation_run`` translates its row together with the other drafts of the
same entity and locale pair, so one job per (tenant, entity, source locale, target locale,
provider) — per ``GROUP_LIMIT`` rows — covers every row this call made a draft; each of those
rows stores the id of the job that will translate it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from broxiva.models import Tenant
from broxiva.queues import enqueue_many
from translations.locales import check_locale
from translations.models import Translation, TranslationEvent, source_hash
from translations.services.lifecycle import _clean_request, job_payload
from translations.services.lifecycle import _draft_fields as _base_draft_fields
from translations.services.translate import GROUP_LIMIT  # drafts of one entity a job translates

S = Translation.Status
Key = tuple[int, str, str, str, str]  # tenant_id, content_type, entity_id, field_name, target_locale


@dataclass(frozen=True)
class TranslationRequest:
    """One row's request: the arguments of ``request_translation``."""

    tenant_id: int
    content_type: str
    entity_id: str
    field_name: str
    source_locale: str
    target_locale: str
    source_text: str
    provider: str | None = None


@dataclass
class RequestSummary:
    """What a call did. ``translations`` holds one row per request, in the requests' order."""

    created: int = 0
    changed: int = 0
    unchanged: int = 0
    job_ids: list[str] = field(default_factory=list)
    translations: list[Translation] = field(default_factory=list)

    @property
    def drafted(self) -> int:
        """Rows this call made a (new) draft: the ones its jobs will translate."""
        return self.created + self.changed


@dataclass
class _Clean:
    key: Key
    source_locale: str
    source_text: str
    digest: str
    provider: str | None


_FIELDS = {f.name for f in dataclasses.fields(TranslationRequest)}


def _as_request(item: object, index: int) -> TranslationRequest:
    if isinstance(item, TranslationRequest):
        return item
    if isinstance(item, Mapping):
        unknown = sorted(set(item) - _FIELDS, key=str)
        if unknown:
            raise ValueError(f"request {index}: unknown field(s) {', '.join(map(repr, unknown))}")
        missing = sorted(
            f.name
            for f in dataclasses.fields(TranslationRequest)
            if f.name not in item and f.default is dataclasses.MISSING
        )
        if missing:
            raise ValueError(f"request {index}: missing field(s) {', '.join(missing)}")
        return TranslationRequest(**item)
    raise ValueError(f"request {index}: expected a TranslationRequest or a dict, not {type(item).__name__}")


def _tenant_pk(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"tenant_id {value!r} is not a tenant's id")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"tenant_id {value!r} is not a tenant's id") from None


def clean(request: TranslationRequest) -> _Clean:
    """Validate one request (``ValueError``, e.g. ``InvalidLocale``, naming the problem)."""
    entity_id, field_name, text = _clean_request(
        request.content_type, request.entity_id, request.field_name, request.source_text, request.provider
    )
    source_locale, target_locale = check_locale(request.source_locale), check_locale(request.target_locale)
    tenant_id = _tenant_pk(request.tenant_id)
    return _Clean(
        key=(tenant_id, request.content_type, entity_id, field_name, target_locale),
        source_locale=source_locale,
        source_text=text,
        digest=source_hash(text),
        provider=request.provider,
    )


def _draft_fields(item: _Clean, job_id: str) -> dict[str, Any]:
    return {
        **_base_draft_fields(item.provider),
        "source_text": item.source_text,
        "source_hash": item.digest,
        "source_locale": item.source_locale,
        "job_id": job_id,
    }


def _key_of(row: Translation) -> Key:
    return (row.tenant_id, row.content_type, row.entity_id, row.field_name, row.target_locale)


def _same_source(row: Translation, item: _Clean) -> bool:
    return row.source_hash == item.digest and row.source_locale == item.source_locale


def _select(keys: Iterable[Key]) -> dict[Key, Translation]:
    """One SELECT ... FOR UPDATE of the rows stored under ``keys`` (locked in id order)."""
    keys = set(keys)
    if not keys:
        return {}
    # Filter on each column's set of values (an index-friendly IN per column), then keep the
    # exact keys: a page's keys share tenant, content types and locales, so little is over-read.
    rows = (
        Translation.objects.select_for_update()
        .filter(
            tenant_id__in={k[0] for k in keys},
            content_type__in={k[1] for k in keys},
            entity_id__in={k[2] for k in keys},
            field_name__in={k[3] for k in keys},
            target_locale__in={k[4] for k in keys},
        )
        .order_by("pk")
    )
    return {key: row for row in rows if (key := _key_of(row)) in keys}


def _plan_jobs(items: list[_Clean]) -> dict[Key, str]:
    """Give every drafted key the id of the job that will translate it (one per entity group)."""
    groups: dict[tuple[Any, ...], list[_Clean]] = {}
    for item in items:
        tenant_id, _, entity_id, _, target = item.key
        groups.setdefault((tenant_id, entity_id, item.source_locale, target, item.provider), []).append(item)
    job_of: dict[Key, str] = {}
    for members in groups.values():
        for start in range(0, len(members), GROUP_LIMIT):
            job_id = uuid.uuid4().hex
            for item in members[start : start + GROUP_LIMIT]:
                job_of[item.key] = job_id
    return job_of


def request_translations(requests: Iterable[TranslationRequest | Mapping[str, Any]]) -> RequestSummary:
    """Create or update many rows as DRAFT and enqueue their jobs after the commit, set-based.

    Each request behaves as ``request_translation`` would: an unchanged ``source_text`` for the
    same locale pair is a no-op (no job, no status change); a changed one starts a new draft
    and keeps ``published_text``; a new key creates a draft. A request repeated for the same
    key in one call counts once (the last one wins). Every request is validated before anything
    is stored: one bad item raises ``ValueError`` naming its index and nothing is written. Safe
    inside the caller's ``transaction.atomic()`` (the jobs go through the outbox).
    """
    cleaned = []
    for index, item in enumerate(requests):
        try:
            cleaned.append(clean(_as_request(item, index)))
        except TypeError as exc:  # a field of the wrong kind the checks did not expect
            raise ValueError(f"request {index}: {exc}") from None
        except ValueError as exc:
            if str(exc).startswith("request "):
                raise
            raise ValueError(f"request {index}: {exc}") from exc
    return apply(cleaned)


def apply(cleaned: list[_Clean]) -> RequestSummary:
    """Store validated requests and enqueue their jobs (``request_translations`` without the checks)."""
    from translations.jobs import TranslationJobData, translate_job  # jobs imports the services

    summary = RequestSummary()
    if not cleaned:
        return summary
    latest: dict[Key, _Clean] = {item.key: item for item in cleaned}  # the last request per key wins
    tenant_ids = {key[0] for key in latest}
    found = set(Tenant.objects.filter(pk__in=tenant_ids).values_list("pk", flat=True))
    if missing := sorted(tenant_ids - found):
        raise ValueError(f"tenant(s) {', '.join(map(str, missing))} do not exist")

    with transaction.atomic():
        stored = _select(latest)
        new = [item for key, item in latest.items() if key not in stored]
        changed = [item for key, item in latest.items() if key in stored and not _same_source(stored[key], item)]
        job_of = _plan_jobs(new + changed)
        created_keys: set[Key] = set()
        if new:
            Translation.objects.bulk_create(
                [
                    Translation(
                        tenant_id=item.key[0],
                        content_type=item.key[1],
                        entity_id=item.key[2],
                        field_name=item.key[3],
                        target_locale=item.key[4],
                        **_draft_fields(item, job_of[item.key]),
                    )
                    for item in new
                ],
                ignore_conflicts=True,  # a concurrent request inserted the same key: re-read below
            )
            inserted = _select(item.key for item in new)
            for item in new:
                row = inserted[item.key]
                stored[item.key] = row
                if row.job_id == job_of[item.key] and _same_source(row, item):
                    created_keys.add(item.key)
                elif not _same_source(row, item):  # theirs, with another text: ours is newer
                    changed.append(item)
                else:  # theirs, with the same text: a no-op, like an unchanged request
                    del job_of[item.key]
        previous = {item.key: stored[item.key].status for item in changed}
        if changed:
            rows, now = [], timezone.now()
            for item in changed:
                row = stored[item.key]
                for name, value in _draft_fields(item, job_of[item.key]).items():
                    setattr(row, name, value)
                row.updated_at = now  # bulk_update does not apply auto_now
                rows.append(row)
            names = list(_draft_fields(changed[0], "")) + ["updated_at"]
            Translation.objects.bulk_update(rows, names)  # one UPDATE ... CASE WHEN for all of them
        events = [
            TranslationEvent(translation=stored[key], action="requested", to_status=S.DRAFT) for key in created_keys
        ] + [
            TranslationEvent(
                translation=stored[item.key],
                action="source_changed",
                from_status=previous[item.key],
                to_status=S.DRAFT,
                note="the source text changed",
            )
            for item in changed
        ]
        if events:
            TranslationEvent.objects.bulk_create(events)
        # One job per group: its payload names the group's first row (by the requests' order).
        leaders: dict[str, Translation] = {}
        for key, job_id in job_of.items():
            leaders.setdefault(job_id, stored[key])
        if leaders:
            payloads = [
                TranslationJobData(**job_payload(row, job_id)).model_dump(mode="json")
                for job_id, row in leaders.items()
            ]
            summary.job_ids = enqueue_many("translation", translate_job, payloads, job_ids=list(leaders))

    summary.created = len(created_keys)
    summary.changed = len(changed)
    summary.unchanged = len(latest) - summary.created - summary.changed
    summary.translations = [stored[item.key] for item in cleaned]
    return summary
