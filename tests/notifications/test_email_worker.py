"""E-mail through real rqworker processes and a real local SMTP server: commit, retries, failures."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import transaction
from rq.job import JobStatus

from broxiva.queues import get_queue
from notifications.models import OutboundEmail
from notifications.services import queue_email
from tests.notifications import smtp_server
from tests.workers import running_worker, wait_for, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def smtp(settings):
    yield from smtp_server.serve(settings)


def _env(server, **extra) -> dict[str, str]:
    return worker_env(**server.settings(), **extra)


def _status(email_id: int) -> str:
    return OutboundEmail.objects.get(pk=email_id).status


def test_an_email_queued_in_a_transaction_arrives_once_after_commit_and_none_after_rollback(smtp):
    with pytest.raises(RuntimeError), transaction.atomic():
        queue_email(to="rolled-back@acme.test", subject="Never", text="x")
        raise RuntimeError("the caller's work failed")
    with transaction.atomic():
        email_id = queue_email(to="ops@acme.test", subject="Your order shipped", text="It is on its way.")
        assert get_queue("email").count == 0  # nothing in Redis before the commit
    assert get_queue("email").count == 1
    with running_worker("email", burst=True, env=_env(smtp)) as worker:
        wait_for(lambda: worker.poll() is not None, timeout=60, what="the burst worker to finish")
    (received,) = smtp.received
    assert received.rcpt_tos == ["ops@acme.test"]
    assert received.message["Subject"] == "Your order shipped"
    email = OutboundEmail.objects.get(pk=email_id)
    assert (email.status, email.attempts) == ("sent", 1)
    assert not OutboundEmail.objects.filter(to__contains=["rolled-back@acme.test"]).exists()


def test_a_451_is_retried_by_the_queue_policy_and_then_sent(smtp, settings):
    settings.QUEUE_OVERRIDES = {"email": {"backoff_base": 1}}  # the policy's curve, faster: 1 s, 2 s
    smtp.handler.data_replies.append("451 4.3.0 mailbox busy, try again later")
    email_id = queue_email(to="ops@acme.test", subject="Retry me", text="x")
    job_id = OutboundEmail.objects.get(pk=email_id).job_id
    with running_worker("email", env=_env(smtp)):
        wait_for(lambda: _status(email_id) == "sent", timeout=45, what="the retried e-mail to be sent")
    assert smtp.handler.data_commands == 2
    assert len(smtp.received) == 1
    email = OutboundEmail.objects.get(pk=email_id)
    assert email.attempts == 2
    assert email.last_error == ""
    job = get_queue("email").fetch_job(job_id)
    assert job.get_status() == JobStatus.FINISHED
    assert job.retries_left == 1  # one retry spent of the policy's two


def test_a_550_fails_at_once_with_the_servers_reply_and_no_retry(smtp):
    smtp.handler.rcpt_replies["ghost@acme.test"] = "550 5.1.1 no such user"
    email_id = queue_email(to="ghost@acme.test", subject="Hello", text="x")
    job_id = OutboundEmail.objects.get(pk=email_id).job_id
    failed = get_queue("email").failed_job_registry
    with running_worker("email", env=_env(smtp)):
        wait_for(lambda: job_id in failed.get_job_ids(), timeout=30, what="the job to fail")
    email = OutboundEmail.objects.get(pk=email_id)
    assert (email.status, email.attempts) == ("failed", 1)
    assert "550 5.1.1 no such user" in email.last_error
    assert get_queue("email").scheduled_job_registry.get_job_ids() == []
    assert "550 5.1.1 no such user" in get_queue("email").fetch_job(job_id).latest_result().exc_string


def test_when_the_last_attempt_fails_the_row_ends_failed_not_queued(smtp, settings):
    settings.QUEUE_OVERRIDES = {"email": {"attempts": 2, "backoff_base": 1}}
    smtp.handler.data_replies.extend(["451 4.3.0 busy", "452 4.3.1 still busy"])
    email_id = queue_email(to="ops@acme.test", subject="Doomed", text="x")
    job_id = OutboundEmail.objects.get(pk=email_id).job_id
    failed = get_queue("email").failed_job_registry
    env = _env(smtp, QUEUE_OVERRIDES=json.dumps({"email": {"attempts": 2, "backoff_base": 1}}))
    with running_worker("email", env=env):
        wait_for(lambda: job_id in failed.get_job_ids(), timeout=45, what="the job to run out of attempts")
    email = OutboundEmail.objects.get(pk=email_id)
    assert (email.status, email.attempts) == ("failed", 2)
    assert email.last_error == "452 4.3.1 still busy (no attempts left)"
    assert smtp.received == []


def test_a_worker_killed_during_the_smtp_conversation_never_causes_a_second_send(smtp):
    from datetime import timedelta

    from notifications.services.email import fail_stale_emails
    from tests.broxiva.ops_helpers import drained, kill_hard, start_fast_worker
    from tests.workers import stop

    smtp.handler.hold = threading.Event()  # the server takes the body, then stalls before replying
    email_id = queue_email(to="ops@acme.test", subject="Once", text="x")
    job_id = OutboundEmail.objects.get(pk=email_id).job_id
    victim, _ = drained(start_fast_worker("email", scheduler=False, **smtp.settings()))
    try:
        wait_for(lambda: smtp.handler.data_commands == 1, timeout=30, what="the body to reach the server")
    finally:
        kill_hard(victim)
    assert _status(email_id) == "sending"
    smtp.handler.hold.set()
    # Crash recovery retries the job (lease 1 + 2 s); the retry finds the row claimed and leaves it.
    replacement, _ = drained(start_fast_worker("email", **smtp.settings()))
    try:
        wait_for(lambda: get_queue("email").fetch_job(job_id).get_status() == JobStatus.FINISHED, timeout=60,
                 what="crash recovery to run the job again")
    finally:
        stop(replacement)
    assert get_queue("email").fetch_job(job_id).return_value() == {"id": email_id, "status": "sending",
                                                                    "skipped": True}
    assert smtp.handler.data_commands == 1
    assert fail_stale_emails(older_than=timedelta(0)) == 1
    email = OutboundEmail.objects.get(pk=email_id)
    assert email.status == "failed" and email.last_error.startswith("outcome unknown")
