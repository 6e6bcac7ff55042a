"""The webhook admin: secrets never shown; rotate, test event and resend actions; deliveries with attempts."""

from __future__ import annotations

import pytest

from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from notifications.services import publish_event, rotate_endpoint_secret

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/notifications/webhookendpoint/"
DELIVERIES = "/admin/notifications/webhookdelivery/"


def secrets_of(endpoint: WebhookEndpoint) -> list[str]:
    endpoint.refresh_from_db()
    values = [endpoint.secret, endpoint.previous_secret]
    return [v for s in values if s for v in (s, s.removeprefix("whsec_"))]


def assert_no_secret(page, endpoint: WebhookEndpoint) -> None:
    assert page.status_code == 200
    for secret in secrets_of(endpoint):
        assert secret not in page.text


class EndpointAdminTests:
    def test_the_secret_is_masked_on_every_page(self, admin_client, acme):
        e = WebhookEndpoint.objects.create(tenant=acme, url="https://hooks.acme.test/x", description="orders")
        rotate_endpoint_secret(e.id)
        assert_no_secret(admin_client.get(ENDPOINTS), e)
        page = admin_client.get(f"{ENDPOINTS}{e.id}/change/")
        assert_no_secret(page, e)
        assert "whsec_•••" in page.text and "previous secret also signs until" in page.text
        assert_no_secret(admin_client.get(f"{ENDPOINTS}add/"), e)

    def test_rotate_secret_action(self, admin_client, acme):
        e = WebhookEndpoint.objects.create(tenant=acme, url="https://hooks.acme.test/x")
        old = e.secret
        page = admin_client.post(ENDPOINTS, {"action": "rotate_secret", "_selected_action": [e.id]}, follow=True)
        assert_no_secret(page, e)
        assert "1 endpoint secret(s) rotated" in page.text
        e.refresh_from_db()
        assert e.secret != old and e.previous_secret == old and e.previous_secret_expires_at

    def test_send_test_event_action(self, admin_client, acme):
        e = WebhookEndpoint.objects.create(tenant=acme, url="https://hooks.acme.test/x", event_types=["order.paid"])
        off = WebhookEndpoint.objects.create(
            tenant=acme, url="https://hooks.acme.test/y", is_active=False, disabled_reason="410 Gone"
        )
        page = admin_client.post(
            ENDPOINTS, {"action": "send_test_event", "_selected_action": [e.id, off.id]}, follow=True
        )
        message = WebhookMessage.objects.get()
        assert message.event_type == "webhook.test" and message.payload["data"] == {"endpoint_id": e.id}
        assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [e.id]
        assert f"Test event sent: {message.id}" in page.text and "Not sent: endpoint" in page.text

    def test_an_endpoint_url_to_a_private_address_is_refused_by_the_form(self, admin_client, acme):
        page = admin_client.post(
            f"{ENDPOINTS}add/",
            {
                "tenant": acme.id,
                "url": "http://169.254.169.254/",
                "description": "",
                "event_types": "[]",
                "is_active": "on",
                "disabled_reason": "",
            },
        )
        assert page.status_code == 200 and "link-local" in page.text
        assert not WebhookEndpoint.objects.exists()


class DeliveryAdminTests:
    def make(self, tenant, event_type="order.created", status="failed") -> WebhookDelivery:
        e = WebhookEndpoint.objects.create(tenant=tenant, url="https://hooks.example.test/x")
        publish_event(tenant_id=tenant.id, event_type=event_type, payload={"id": 1})
        delivery = WebhookDelivery.objects.get(endpoint=e)
        delivery.status, delivery.attempts, delivery.last_error = status, 1, "HTTP 500"
        delivery.save()
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=1,
            status_code=500,
            error="HTTP 500",
            response_excerpt="upstream exploded",
            duration_ms=12,
        )
        return delivery

    def test_it_shows_attempts_inline_and_filters(self, admin_client, acme, globex):
        failed = self.make(acme)
        self.make(globex, event_type="product.updated", status="succeeded")
        page = admin_client.get(f"{DELIVERIES}{failed.id}/change/")
        assert page.status_code == 200 and "upstream exploded" in page.text and "HTTP 500" in page.text
        assert_no_secret(page, failed.endpoint)
        assert admin_client.get(DELIVERIES, {"status__exact": "failed"}).context["cl"].result_count == 1
        assert admin_client.get(DELIVERIES, {"event_type": "product.updated"}).context["cl"].result_count == 1
        by_tenant = admin_client.get(DELIVERIES, {"endpoint__tenant__id__exact": acme.id})
        assert list(by_tenant.context["cl"].queryset) == [failed]

    def test_resend_creates_a_new_delivery_of_the_same_message(self, admin_client, acme):
        failed = self.make(acme)
        page = admin_client.post(DELIVERIES, {"action": "resend", "_selected_action": [failed.id]}, follow=True)
        assert "1 delivery(ies) queued again" in page.text
        again = WebhookDelivery.objects.exclude(id=failed.id).get()
        assert (again.message_id, again.endpoint_id, again.resend_of_id, again.status) == (
            failed.message_id,
            failed.endpoint_id,
            failed.id,
            "pending",
        )

    def test_deliveries_and_attempts_are_read_only(self, admin_client, acme):
        failed = self.make(acme)
        assert admin_client.get(f"{DELIVERIES}add/").status_code == 403
        assert admin_client.post(f"{DELIVERIES}{failed.id}/delete/", {"post": "yes"}).status_code == 403
