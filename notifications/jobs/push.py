"""The ``notification`` queue's job: send one ``PushDelivery``, at most once."""

from __future__ import annotations

from typing import Any

from broxiva.queues import JobPayload, payload
from broxiva.ratelimit import DeferJob
from notifications.jobs._attempts import is_final_attempt, may_defer
from notifications.services import push as service


class PushSendJobData(JobPayload):
    delivery_id: int


@payload(PushSendJobData)
def push_send_job(data: PushSendJobData) -> dict[str, Any]:
    try:
        outcome = service.push_send(delivery_id=data.delivery_id, final_attempt=is_final_attempt(),
                                    may_defer=may_defer())
    except service.DeferDelivery as exc:
        # A 429 / QUOTA_EXCEEDED: run again after Retry-After without spending an attempt.
        raise DeferJob(exc.seconds, reason=exc.reason) from None
    # PushSendFailed propagates: transient (5xx, timeout) is retried, permanent fails at once.
    return outcome.as_dict()
