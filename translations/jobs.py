"""Jobs of the ``translation`` queue (thin: validate → service → small JSON result)."""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from broxiva.queues import JobPayload, payload
from broxiva.ratelimit import DeferJob
from translations import services
from translations.errors import TranslationDeferred
from translations.locales import check_locale
from translations.models import ContentType, source_hash


class TranslationContent(JobPayload):
    type: str
    entity_id: str
    field_name: str
    source_text: str

    @pydantic.field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in ContentType.values:
            raise ValueError(f"unknown content type {value!r}")
        return value


class TranslationJobData(JobPayload):
    """The seed's ``TranslationJobData`` in snake_case, plus the row id."""

    job_id: str
    tenant_id: int
    translation_id: int
    source_locale: str
    target_locale: str
    content: TranslationContent
    provider: Literal["anthropic", "openai"] | None = None

    @pydantic.field_validator("source_locale", "target_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return check_locale(value)


@payload(TranslationJobData)
def translate_job(data: TranslationJobData) -> dict[str, Any]:
    try:
        return services.translation_run(
            translation_id=data.translation_id,
            source_hash=source_hash(data.content.source_text),
            provider=data.provider,
        )
    except TranslationDeferred as exc:
        raise DeferJob(exc.retry_after, reason=str(exc)) from None
    # TranslationFailed propagates: transient ones are retried by the queue's policy, permanent
    # ones (transient=False: every key refused, a 400) fail at once; last_error holds the why.


def batch_poll_job() -> dict[str, Any]:
    return services.batch_poll()
