"""The disable-after-days sweep: endpoints whose deliveries have all failed for WEBHOOK_DISABLE_AFTER_DAYS."""

from __future__ import annotations

import sys
import types
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.jobs.webhooks import webhook_endpoints_disable_job
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from notifications.services.webhooks import endpoints_disable_failing


@pytest.fixture
def sent_emails(monkeypatch):
    """Record calls to ``notifications.services.email.queue_email``.

    The e-mail channel is built on another branch; until the merge this stands in for it (the
    integrator adds the end-to-end test through a local SMTP server). The real module, when
    present, is replaced the same way: the sweep imports it lazily.
    """
    calls: list[dict] = []
    fake = types.ModuleType("notifications.services.email")

    def queue_email(**kwargs):
        calls.append(kwargs)
        return len(calls)

    fake.queue_email = queue_email
    monkeypatch.setitem(sys.modules, "notifications.services.email", fake)
    return calls


def history(endpoint, *tries: tuple[int, str]) -> None:
    """Record tries ``(days_ago, kind)`` on one delivery of ``endpoint``: kind ok / fail / deferred."""
    message = WebhookMessage.objects.create(tenant=endpoint.tenant, event_type="a.b", payload={})
    delivery = WebhookDelivery.objects.create(message=message, endpoint=endpoint, status="failed")
    now = timezone.now()
    for number, (days_ago, kind) in enumerate(tries, start=1):
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=number,
            succeeded=kind == "ok",
            deferred=kind == "deferred",
            status_code=200 if kind == "ok" else 503,
            created_at=now - timedelta(days=days_ago),
        )


@pytest.mark.django_db
class DisableSweepTests:
    def test_it_disables_an_endpoint_failing_for_five_days_and_tells_the_tenant_once(self, acme, sent_emails):
        e = WebhookEndpoint.objects.create(tenant=acme, url="https://hooks.acme.test/x", description="orders")
        history(e, (6, "fail"), (3, "fail"), (0.1, "fail"))
        waiting = WebhookDelivery.objects.create(
            message=WebhookMessage.objects.create(tenant=acme, event_type="a.b", payload={}), endpoint=e
        )
        assert webhook_endpoints_disable_job() == {"disabled": [e.id]}
        e.refresh_from_db()
        assert not e.is_active and "failed for 5 days" in e.disabled_reason and e.disabled_at
        waiting.refresh_from_db()
        assert waiting.status == "failed" and waiting.last_error.startswith("endpoint disabled: every delivery failed")
        (email,) = sent_emails
        assert email["to"] == "ops@acme.test" and email["template"] == "webhook-endpoint-disabled"
        assert email["tenant_id"] == acme.id and email["key"].startswith(f"webhook-endpoint-disabled:{e.id}:")
        assert email["context"]["url"] == "https://hooks.acme.test/x"
        assert endpoints_disable_failing() == [] and len(sent_emails) == 1  # once

    @pytest.mark.parametrize(
        "tries",
        [
            [(6, "fail"), (2, "ok"), (1, "fail")],  # a success inside the window
            [(4, "fail"), (1, "fail")],  # failing, but for less than five days
            [(6, "deferred"), (1, "deferred")],  # Retry-After answers are not failures
            [(20, "fail"), (10, "ok")],  # old failures, then a success and nothing since
        ],
    )
    def test_it_leaves_an_endpoint_that_has_not_failed_for_five_days(self, acme, sent_emails, tries):
        e = WebhookEndpoint.objects.create(tenant=acme, url="https://hooks.acme.test/x")
        history(e, *tries)
        assert endpoints_disable_failing() == []
        e.refresh_from_db()
        assert e.is_active and sent_emails == []

    def test_a_streak_that_began_after_an_old_success_counts_from_its_first_failure(self, acme, sent_emails):
        e = WebhookEndpoint.objects.create(tenant=acme, url="https://hooks.acme.test/x")
        history(e, (12, "ok"), (7, "fail"), (1, "fail"))
        assert endpoints_disable_failing() == [e.id]

    def test_it_disables_without_mail_when_the_tenant_has_no_contact(self, acme, sent_emails, settings):
        settings.WEBHOOK_DISABLE_AFTER_DAYS = 2
        acme.contact_email = ""
        acme.save()
        e = WebhookEndpoint.objects.create(tenant=acme, url="https://hooks.acme.test/x")
        history(e, (3, "fail"))
        assert endpoints_disable_failing() == [e.id] and sent_emails == []

    def test_the_template_renders_for_the_e_mail(self):
        from django.template.loader import render_to_string

        context = {
            "tenant_name": "Acme & Co",
            "endpoint_id": 7,
            "url": "https://hooks.acme.test/x?a=1&b=2",
            "description": "orders",
            "reason": "every delivery failed for 5 days",
            "days": 5,
        }
        subject = render_to_string("notifications/email/webhook-endpoint-disabled/subject.txt", context)
        body = render_to_string("notifications/email/webhook-endpoint-disabled/body.txt", context)
        assert subject.strip() == "Webhook endpoint 7 disabled: orders"
        assert "Hello Acme & Co," in body and "https://hooks.acme.test/x?a=1&b=2" in body


@pytest.mark.django_db(transaction=True)
class DisableSweepEmailTests:
    """The sweep's e-mail through the real e-mail channel, to a local SMTP server."""

    @pytest.fixture
    def smtp(self, settings):
        from tests.notifications import smtp_server

        yield from smtp_server.serve(settings)

    def test_the_tenant_receives_one_email_naming_the_endpoint_and_the_reason(self, acme, smtp):
        from notifications.jobs.email import email_send_job
        from notifications.models import OutboundEmail

        e = WebhookEndpoint.objects.create(tenant=acme, url="https://hooks.acme.test/x", description="orders")
        history(e, (6, "fail"), (0.1, "fail"))

        assert webhook_endpoints_disable_job() == {"disabled": [e.id]}
        (row,) = OutboundEmail.objects.all()
        assert (row.to, row.tenant_id, row.status) == (["ops@acme.test"], acme.id, "queued")
        email_send_job(email_id=row.id)

        (received,) = smtp.received
        assert received.rcpt_tos == ["ops@acme.test"]
        assert received.message["Subject"] == f"Webhook endpoint {e.id} disabled: orders"
        body = received.message.get_content()
        assert "https://hooks.acme.test/x" in body and "failed for 5 days" in body
        assert whsec_absent(body, e.secret)
        assert endpoints_disable_failing() == [] and OutboundEmail.objects.count() == 1


def whsec_absent(text: str, secret: str) -> bool:
    return secret not in text and secret.removeprefix("whsec_") not in text
