"""The ``email`` queue's job: send one ``OutboundEmail`` row, at most once."""

from __future__ import annotations

from typing import Any

from broxiva.queues import JobPayload, payload
from notifications.jobs._attempts import is_final_attempt
from notifications.services import email as service


class EmailSendJobData(JobPayload):
    """The job's payload: the row's id, nothing else (no addresses or bodies in Redis)."""

    email_id: int


@payload(EmailSendJobData)
def email_send_job(data: EmailSendJobData) -> dict[str, Any]:
    # EmailSendFailed propagates: a transient one (SMTP 4xx, connection refused) is retried by
    # the queue's policy (3 attempts, 10 s base); a permanent one (5xx) fails the job at once.
    return service.email_send(email_id=data.email_id, final_attempt=is_final_attempt()).as_dict()


def stale_sends_sweep_job() -> dict[str, Any]:
    """Fail e-mails and push deliveries left ``sending`` by a worker that died (never re-sent)."""
    from notifications.services.push import fail_stale_deliveries

    return {"emails": service.fail_stale_emails(), "push_deliveries": fail_stale_deliveries()}
