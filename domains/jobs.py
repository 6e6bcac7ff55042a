"""Jobs of the ``domain-verification`` queue (thin: validate → service → small result)."""

from __future__ import annotations

from typing import Any

import pydantic
from django.conf import settings

from broxiva.queues import JobPayload, payload
from domains import services


class DomainVerifyJobData(JobPayload):
    """The job's payload: the domain's id only (no token in Redis)."""

    domain_id: int = pydantic.Field(gt=0)


@payload(DomainVerifyJobData)
def domain_verify_job(data: DomainVerifyJobData) -> dict[str, Any]:
    # CheckUnavailable (DNS timeout/SERVFAIL, HTTP timeout/5xx) propagates: the queue's policy
    # (10 attempts, 60 s base, 1 h cap) retries it; it is not a check and never fails the domain.
    size = settings.DOMAIN_CHECK_BATCH
    if size > 1:  # several checks in flight: this job's and siblings still waiting (services/batch.py)
        from domains.services.batch import verify_batch

        return verify_batch(data.domain_id, size)
    return services.domain_verify(domain_id=data.domain_id).as_dict()


def domains_sweep_job() -> dict[str, Any]:
    """Expire old pending domains, then enqueue one check per due domain (the 5-minute entry)."""
    return services.domains_sweep().as_dict()
