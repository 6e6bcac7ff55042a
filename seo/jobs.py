"""Jobs of the ``sitemap-generation`` queue (thin: validate → service → small JSON result)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import pydantic
from django.conf import settings
from django.db import transaction

from broxiva.models import Tenant
from broxiva.queues import JobPayload, enqueue, enqueue_many, payload
from seo import services

QUEUE = "sitemap-generation"
SitemapType = Literal["products", "categories", "pages"]


class SitemapJobData(JobPayload):
    """The seed's ``SitemapJobData``, in snake_case. ``job_id`` is the caller's id for the run,
    recorded on the generation."""

    job_id: str = pydantic.Field(min_length=1, max_length=128)
    tenant_id: int = pydantic.Field(gt=0)
    types: list[SitemapType] | None = None
    locales: list[pydantic.constr(min_length=2, max_length=35)] | None = None  # type: ignore[valid-type]
    upload_to_storage: bool = True
    ping_search_engines: bool = False

    @pydantic.field_validator("types", "locales")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("give at least one, or leave it out for all of them")
        return value


@payload(SitemapJobData)
def generate_sitemaps_job(data: SitemapJobData) -> dict[str, Any]:
    # InvalidRequest (transient=False) fails the job at once; a storage or database error is
    # retried by the queue's policy (the failed generation removed what it had stored).
    generation = services.generate_sitemaps(
        tenant_id=data.tenant_id, types=data.types, locales=data.locales,
        upload_to_storage=data.upload_to_storage, ping_search_engines=data.ping_search_engines, job_id=data.job_id,
    )
    return generation.as_dict()


def request_generation(*, tenant_id: int, **options: Any) -> str:
    """Enqueue one generation for a tenant (through the outbox: never lost); return its job id."""
    job_id = uuid.uuid4().hex
    with transaction.atomic():
        # The payload as a model: its ``job_id`` field would clash with enqueue's own keyword.
        data = SitemapJobData(job_id=job_id, tenant_id=tenant_id, **options)
        return enqueue(QUEUE, generate_sitemaps_job, data, job_id=job_id)


def generate_sitemaps_all_job() -> dict[str, Any]:
    """The periodic entry: fan out one generation per active tenant, announcing with IndexNow
    when a key is configured."""
    ids = list(Tenant.objects.filter(is_active=True).order_by("id").values_list("id", flat=True))
    job_ids = [uuid.uuid4().hex for _ in ids]
    ping = bool(settings.INDEXNOW_KEY)
    with transaction.atomic():
        enqueue_many(
            QUEUE, generate_sitemaps_job,
            [
                {"job_id": jid, "tenant_id": tid, "ping_search_engines": ping}
                for jid, tid in zip(job_ids, ids, strict=True)
            ],
            job_ids=job_ids,
        )
    return {"queued": len(ids)}
