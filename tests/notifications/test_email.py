"""E-mail: queue_email's contract, rendering, and sends against a real local SMTP server (in-process)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from broxiva.models import OutboxJob
from broxiva.queues import get_queue
from notifications.errors import EmailSendFailed
from notifications.jobs.email import email_send_job, stale_sends_sweep_job
from notifications.models import OutboundEmail
from notifications.services import queue_email
from tests.notifications import smtp_server
from tests.notifications.smtp_server import DROP, closed_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings):
    yield from smtp_server.serve(settings)


def _queued(**kwargs) -> OutboundEmail:
    return OutboundEmail.objects.get(pk=queue_email(**kwargs))


class QueueEmailTests:
    @pytest.mark.parametrize("kwargs, problem", [
        ({"to": [], "subject": "Hi", "text": "x"}, "at least one recipient"),
        ({"to": "", "subject": "Hi", "text": "x"}, "invalid e-mail address"),
        ({"to": "not-an-address", "subject": "Hi", "text": "x"}, "invalid e-mail address"),
        ({"to": ["ok@acme.test", "bad@@acme.test"], "subject": "Hi", "text": "x"}, "invalid e-mail address"),
        ({"to": "a@acme.test\nBcc: x@evil.test", "subject": "Hi", "text": "x"}, "invalid e-mail address"),
        ({"to": "a@acme.test", "template": "no-such-template"}, "unknown e-mail template"),
        ({"to": "a@acme.test", "template": "../../admin/base"}, "invalid template name"),
        ({"to": "a@acme.test"}, "give a template, or a subject"),
        ({"to": "a@acme.test", "text": "body only"}, "give a template, or a subject"),
        ({"to": "a@acme.test", "subject": "Hi"}, "non-empty text body"),
        ({"to": "a@acme.test", "subject": "  ", "text": "x"}, "subject is empty"),
        ({"to": "a@acme.test", "subject": "Hi", "text": "x", "template": "test-message"}, "not both"),
        ({"to": "a@acme.test", "subject": "Hi", "text": "x", "tenant_id": 999_999}, "no tenant"),
        ({"to": "a@acme.test", "subject": "Hi", "text": "x", "key": ""}, "key must be"),
        ({"to": 42, "subject": "Hi", "text": "x"}, "list of addresses"),
    ])
    def test_it_refuses_bad_input_before_storing_anything(self, kwargs, problem):
        with pytest.raises(ValueError, match=problem):
            queue_email(**kwargs)
        assert not OutboundEmail.objects.exists()
        assert not OutboxJob.objects.exists()
        assert get_queue("email").count == 0

    def test_it_stores_the_row_and_enqueues_its_job_after_commit(self, acme, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            email = _queued(to=[" Ops@Acme.test", "ops@acme.test", "cto@acme.test"], subject="Deploy\n done",
                            text="All good.", tenant_id=acme.pk)
            assert get_queue("email").count == 0  # not before the commit
        assert email.to == ["Ops@Acme.test", "cto@acme.test"]  # trimmed, case-insensitive duplicates dropped
        assert email.subject == "Deploy done"  # one header line
        assert (email.status, email.attempts, email.tenant_id) == ("queued", 0, acme.pk)
        assert email.message_id.startswith("<") and email.from_email == "Broxiva <noreply@localhost>"
        (job,) = get_queue("email").jobs
        assert job.id == email.job_id and job.kwargs == {"email_id": email.pk}

    def test_the_same_key_returns_the_same_row_per_tenant(self, acme, globex):
        first = queue_email(to="a@acme.test", subject="Order 1", text="x", tenant_id=acme.pk, key="order-1")
        again = queue_email(to="b@acme.test", subject="Order 1 again", text="y", tenant_id=acme.pk, key="order-1")
        other = queue_email(to="a@globex.test", subject="Order 1", text="x", tenant_id=globex.pk, key="order-1")
        no_tenant = queue_email(to="a@acme.test", subject="Order 1", text="x", key="order-1")
        assert again == first
        assert len({first, other, no_tenant}) == 3
        assert queue_email(to="z@acme.test", subject="x", text="x", key="order-1") == no_tenant
        assert OutboundEmail.objects.count() == 3
        assert OutboxJob.objects.count() == 3  # one job per row (pushed when the test's transaction would commit)

    def test_it_renders_a_template_when_queued(self):
        email = _queued(to="a@acme.test", template="test-message",
                        context={"name": "Ann & Bob", "site": "Acme <Shop>", "note": "R&D"})
        assert email.subject == "Acme <Shop>: test message"
        assert "Hello Ann & Bob," in email.text and "Note: R&D" in email.text  # plain text is not HTML-escaped
        assert "Hello Ann &amp; Bob," in email.html and "<strong>Acme &lt;Shop&gt;</strong>" in email.html
        assert email.template == "test-message"

    def test_nothing_is_enqueued_when_the_callers_transaction_rolls_back(self):
        with pytest.raises(RuntimeError), transaction.atomic():
            queue_email(to="a@acme.test", subject="Hi", text="x")
            raise RuntimeError("the caller's work failed")
        assert not OutboundEmail.objects.exists()
        assert not OutboxJob.objects.exists()
        assert get_queue("email").count == 0


class SendTests:
    def test_it_sends_multipart_through_smtp_once_even_when_the_job_runs_twice(self, smtp):
        email = _queued(to=["a@acme.test", "b@acme.test"], template="test-message", context={"name": "Ann"})
        assert email_send_job(email_id=email.pk) == {"id": email.pk, "status": "sent"}
        assert email_send_job(email_id=email.pk) == {"id": email.pk, "status": "sent", "skipped": True}
        assert smtp.handler.data_commands == 1
        (received,) = smtp.received
        assert received.rcpt_tos == ["a@acme.test", "b@acme.test"]
        message = received.message
        assert message["Subject"] == "Broxiva: test message"
        assert message["Message-ID"] == email.message_id
        assert message["X-Broxiva-Email-Id"] == str(email.pk)
        assert message.get_content_type() == "multipart/alternative"
        assert "Hello Ann," in message.get_body(("plain",)).get_content()
        assert "<p>Hello Ann,</p>" in message.get_body(("html",)).get_content()
        email.refresh_from_db()
        assert (email.status, email.attempts, email.last_error) == ("sent", 1, "")
        assert email.sent_at is not None

    def test_a_text_only_email_is_not_multipart(self, smtp):
        email = _queued(to="a@acme.test", subject="Plain", text="Just text.")
        email_send_job(email_id=email.pk)
        (received,) = smtp.received
        assert received.message.get_content_type() == "text/plain"
        assert received.message.get_content().strip() == "Just text."

    def test_a_5xx_fails_the_row_at_once_with_the_servers_reply(self, smtp):
        smtp.handler.rcpt_replies["ghost@acme.test"] = "550 5.1.1 no such user"
        email = _queued(to="ghost@acme.test", subject="Hi", text="x")
        with pytest.raises(EmailSendFailed) as info:
            email_send_job(email_id=email.pk)
        assert info.value.transient is False
        email.refresh_from_db()
        assert email.status == "failed" and email.attempts == 1
        assert "550 5.1.1 no such user" in email.last_error and "ghost@acme.test" in email.last_error
        assert smtp.handler.data_commands == 0

    def test_a_4xx_puts_the_row_back_for_a_retry(self, smtp):
        smtp.handler.data_replies.append("451 4.3.0 try again later")
        email = _queued(to="a@acme.test", subject="Hi", text="x")
        # Outside a worker the attempt counts as the last one; with retries left it goes back to queued.
        from notifications.services.email import email_send

        with pytest.raises(EmailSendFailed) as info:
            email_send(email_id=email.pk, final_attempt=False)
        assert info.value.transient is True
        email.refresh_from_db()
        assert (email.status, email.attempts, email.last_error) == ("queued", 1, "451 4.3.0 try again later")
        assert email_send(email_id=email.pk, final_attempt=False).status == "sent"
        assert len(smtp.received) == 1
        email.refresh_from_db()
        assert (email.status, email.attempts) == ("sent", 2)

    def test_a_transient_failure_on_the_last_attempt_fails_the_row(self, smtp):
        smtp.handler.data_replies.append("421 4.7.0 too busy")
        email = _queued(to="a@acme.test", subject="Hi", text="x")
        with pytest.raises(EmailSendFailed):
            email_send_job(email_id=email.pk)  # no worker: nothing retries it, so this is the last attempt
        email.refresh_from_db()
        assert email.status == "failed"
        assert email.last_error == "421 4.7.0 too busy (no attempts left)"

    def test_connection_refused_is_transient(self, settings):
        from notifications.services.email import email_send

        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
        email = _queued(to="a@acme.test", subject="Hi", text="x")
        with pytest.raises(EmailSendFailed) as info:
            email_send(email_id=email.pk, final_attempt=False)
        assert info.value.transient is True
        email.refresh_from_db()
        assert email.status == "queued" and "ConnectionRefusedError" in email.last_error

    def test_a_connection_lost_after_the_body_went_out_is_never_sent_again(self, smtp):
        from notifications.services.email import email_send

        smtp.handler.data_replies.append(DROP)
        email = _queued(to="a@acme.test", subject="Hi", text="x")
        with pytest.raises(EmailSendFailed) as info:
            email_send(email_id=email.pk, final_attempt=False)  # even with attempts left
        assert info.value.transient is False
        email.refresh_from_db()
        assert email.status == "failed" and email.last_error.startswith("outcome unknown")
        assert email_send(email_id=email.pk, final_attempt=False).skipped
        assert smtp.handler.data_commands == 1

    def test_recipients_refused_among_accepted_ones_are_recorded(self, smtp):
        smtp.handler.rcpt_replies["ghost@acme.test"] = "550 5.1.1 no such user"
        email = _queued(to=["a@acme.test", "ghost@acme.test"], subject="Hi", text="x")
        email_send_job(email_id=email.pk)
        email.refresh_from_db()
        assert email.status == "sent"
        assert email.last_error == "refused ghost@acme.test: 550 5.1.1 no such user"
        assert smtp.received[0].rcpt_tos == ["a@acme.test"]

    def test_the_configured_backend_is_used(self):
        # tests.settings uses the locmem backend; the embedded default is the console one.
        email = _queued(to="a@acme.test", subject="Hi", text="x")
        email_send_job(email_id=email.pk)
        (message,) = mail.outbox
        assert message.subject == "Hi" and message.to == ["a@acme.test"]


class StaleSendTests:
    def test_a_row_left_sending_is_never_resent_and_the_sweep_fails_it(self, smtp):
        email = _queued(to="a@acme.test", subject="Hi", text="x")
        # A worker claimed it and died during the SMTP conversation.
        OutboundEmail.objects.filter(pk=email.pk).update(status="sending", attempts=1,
                                                         claimed_at=timezone.now() - timedelta(minutes=30))
        assert email_send_job(email_id=email.pk)["skipped"] is True  # crash recovery's retry: no-op
        fresh = queue_email(to="b@acme.test", subject="Hi", text="x")
        OutboundEmail.objects.filter(pk=fresh).update(status="sending", claimed_at=timezone.now())
        assert stale_sends_sweep_job() == {"emails": 1, "push_deliveries": 0}
        email.refresh_from_db()
        assert email.status == "failed"
        assert email.last_error.startswith("outcome unknown: the worker stopped during the SMTP conversation")
        assert OutboundEmail.objects.get(pk=fresh).status == "sending"  # still within its time
        assert smtp.handler.data_commands == 0

    def test_the_sweep_is_a_registered_periodic_entry(self):
        from broxiva.schedules import collect

        (entry,) = [e for e in collect() if e.id == "notifications-stale-sends"]
        assert (entry.queue, entry.func) == ("email", "notifications.jobs.email.stale_sends_sweep_job")


class CommandTests:
    def test_send_test_email_sends_now_and_reports_the_servers_refusal(self, smtp):
        from django.core.management import CommandError, call_command

        out = io.StringIO()
        call_command("send_test_email", "ops@acme.test", stdout=out)
        assert "sent to ops@acme.test through smtp" in out.getvalue()
        assert smtp.received[0].message["Subject"] == "Broxiva: test message"
        smtp.handler.rcpt_replies["ghost@acme.test"] = "550 5.1.1 no such user"
        with pytest.raises(CommandError, match="550 5.1.1 no such user"):
            call_command("send_test_email", "ghost@acme.test")
        with pytest.raises(CommandError, match="invalid e-mail address"):
            call_command("send_test_email", "not-an-address")
