"""Push: devices, queue_push's fan-out, and sends to local Web Push and FCM services (in-process)."""

from __future__ import annotations

import pytest
from django.db import transaction

from broxiva.models import OutboxJob
from broxiva.queues import get_queue
from broxiva.ratelimit import DeferJob
from notifications.errors import PushSendFailed
from notifications.jobs.push import push_send_job
from notifications.models import Device, PushDelivery
from notifications.providers import fcm
from notifications.services import queue_push, register_device
from notifications.services.push import push_send
from tests.broxiva.http_servers import RawServer, response
from tests.notifications.push_servers import FcmService, Reply, VapidKeys, WebPushService, fcm_error

pytestmark = pytest.mark.django_db

SUBJECT = "mailto:push-ops@broxiva.test"


@pytest.fixture
def vapid():
    return VapidKeys()


@pytest.fixture
def pushsvc(settings, vapid):
    settings.WEBPUSH_VAPID_PRIVATE_KEY = vapid.private_raw
    settings.WEBPUSH_VAPID_SUBJECT = SUBJECT
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # the local push service is on loopback
    service = WebPushService(vapid)
    yield service
    service.stop()


@pytest.fixture
def fcmsvc(settings, tmp_path):
    service = FcmService()
    settings.FCM_CREDENTIALS_FILE = service.write_credentials(tmp_path)
    settings.FCM_PROJECT_ID = ""
    settings.FCM_URL = service.send_url
    fcm.forget_token()
    yield service
    fcm.forget_token()
    service.stop()


def webpush_device(service: WebPushService, tenant, user_ref: str = "user-1", name: str = "ann-laptop") -> Device:
    endpoint, subscriber = service.subscribe(name)
    pk = register_device(tenant_id=tenant.pk, user_ref=user_ref, platform="webpush", endpoint=endpoint,
                         p256dh=subscriber.p256dh, auth=subscriber.auth)
    return Device.objects.get(pk=pk)


ANN_PHONE = "fcm-token-ann-phone-0123456789"


def fcm_device(tenant, user_ref: str = "user-1", token: str = ANN_PHONE) -> Device:
    return Device.objects.get(pk=register_device(tenant_id=tenant.pk, user_ref=user_ref, platform="fcm", token=token))


def one_delivery(tenant, **kwargs) -> PushDelivery:
    assert queue_push(tenant_id=tenant.pk, user_ref=kwargs.pop("user_ref", "user-1"), title=kwargs.pop("title", "Hi"),
                      body=kwargs.pop("body", "Your order shipped"), **kwargs) == 1
    return PushDelivery.objects.get()


class DeviceTests:
    def test_registering_the_same_subscription_again_refreshes_and_reactivates_it(self, acme, pushsvc):
        device = webpush_device(pushsvc, acme)
        Device.objects.filter(pk=device.pk).update(is_active=False, last_error="HTTP 410")
        again = register_device(tenant_id=acme.pk, user_ref="user-2", platform="webpush", endpoint=device.endpoint,
                                p256dh=device.p256dh, auth=device.auth)
        assert again == device.pk
        device.refresh_from_db()
        assert (device.is_active, device.last_error, device.user_ref) == (True, "", "user-2")

    @pytest.mark.parametrize("kwargs, problem", [
        ({"platform": "webpush", "endpoint": "ftp://push.example/x", "p256dh": "a", "auth": "b"}, "http"),
        ({"platform": "webpush", "endpoint": "https://push.example/x"}, "p256dh and auth"),
        ({"platform": "webpush", "endpoint": "https://push.example/x", "p256dh": "bm90LWEta2V5", "auth": "YWJj"},
         "invalid Web Push subscription keys"),
        ({"platform": "fcm", "token": ""}, "registration token"),
        ({"platform": "apns", "token": "x"}, "platform must be"),
    ])
    def test_it_refuses_a_bad_subscription(self, acme, kwargs, problem):
        with pytest.raises(ValueError, match=problem):
            register_device(tenant_id=acme.pk, user_ref="user-1", **kwargs)
        assert not Device.objects.exists()


class QueuePushTests:
    def test_it_fans_out_one_delivery_per_active_device_after_commit(self, acme, globex, pushsvc,
                                                                     django_capture_on_commit_callbacks):
        laptop = webpush_device(pushsvc, acme, name="laptop")
        phone = fcm_device(acme)
        old = webpush_device(pushsvc, acme, name="old-laptop")
        Device.objects.filter(pk=old.pk).update(is_active=False)
        webpush_device(pushsvc, acme, user_ref="someone-else", name="bob")
        webpush_device(pushsvc, globex, name="globex-ann")  # same user_ref, another tenant
        with django_capture_on_commit_callbacks(execute=True):
            count = queue_push(tenant_id=acme.pk, user_ref="user-1", title="Shipped", body="Order 42 shipped",
                               data={"order": "42", "url": "/orders/42"})
            assert get_queue("notification").count == 0
        assert count == 2
        deliveries = PushDelivery.objects.order_by("device_id")
        assert [d.device_id for d in deliveries] == sorted([laptop.pk, phone.pk])
        assert {d.status for d in deliveries} == {"queued"}
        assert sorted(j.kwargs["delivery_id"] for j in get_queue("notification").jobs) == sorted(
            d.pk for d in deliveries)
        assert {d.job_id for d in deliveries} == set(get_queue("notification").job_ids)

    def test_the_same_key_returns_the_existing_deliveries(self, acme, pushsvc):
        webpush_device(pushsvc, acme, name="laptop")
        fcm_device(acme)
        first = queue_push(tenant_id=acme.pk, user_ref="user-1", title="Hi", body="x", key="order-42-shipped")
        webpush_device(pushsvc, acme, name="new-tablet")
        again = queue_push(tenant_id=acme.pk, user_ref="user-1", title="Hi", body="x", key="order-42-shipped")
        assert first == again == 2
        assert PushDelivery.objects.count() == 2
        assert OutboxJob.objects.count() == 2

    def test_no_active_device_means_nothing_queued(self, acme):
        assert queue_push(tenant_id=acme.pk, user_ref="nobody", title="Hi", body="x") == 0
        assert not OutboxJob.objects.exists()

    @pytest.mark.parametrize("kwargs, problem", [
        ({"title": ""}, "title"),
        ({"body": None}, "body must be a string"),
        ({"data": ["x"]}, "data must be a dict"),
        ({"data": {"from": "x"}}, "reserved"),
        ({"data": {"google.c.a": "x"}}, "reserved"),
        ({"data": {"x": object()}}, "JSON-serialisable"),
        ({"body": "x" * 5000}, "at most 3800"),
        ({"user_ref": " "}, "user_ref"),
        ({"tenant_id": 999_999}, "no tenant"),
        ({"key": ""}, "key must be"),
    ])
    def test_it_refuses_bad_input_before_storing_anything(self, acme, pushsvc, kwargs, problem):
        webpush_device(pushsvc, acme)
        call = {"tenant_id": acme.pk, "user_ref": "user-1", "title": "Hi", "body": "x", **kwargs}
        with pytest.raises(ValueError, match=problem):
            queue_push(**call)
        assert not PushDelivery.objects.exists() and not OutboxJob.objects.exists()

    def test_nothing_is_queued_when_the_callers_transaction_rolls_back(self, acme, pushsvc):
        webpush_device(pushsvc, acme)
        with pytest.raises(RuntimeError), transaction.atomic():
            queue_push(tenant_id=acme.pk, user_ref="user-1", title="Hi", body="x")
            raise RuntimeError("the caller's work failed")
        assert not PushDelivery.objects.exists() and not OutboxJob.objects.exists()


class WebPushTests:
    def test_the_body_is_aes128gcm_encrypted_for_the_subscription_and_vapid_signed(self, acme, pushsvc, vapid):
        device = webpush_device(pushsvc, acme)
        delivery = one_delivery(acme, title="Shipped", body="Order 42 — on its way", data={"order": 42})
        assert push_send_job(delivery_id=delivery.pk) == {"id": delivery.pk, "status": "sent"}
        assert push_send_job(delivery_id=delivery.pk)["skipped"] is True  # a duplicate job sends nothing
        (message,) = pushsvc.messages
        assert message.problems == []
        assert message.json() == {"title": "Shipped", "body": "Order 42 — on its way", "data": {"order": 42}}
        assert message.headers["content-encoding"] == "aes128gcm"
        assert message.headers["ttl"] == "86400"
        assert message.headers["authorization"].startswith("vapid t=")
        assert message.claims["aud"] == pushsvc.origin and message.claims["sub"] == SUBJECT
        assert device.endpoint.endswith(message.path)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("sent", 1) and delivery.sent_at

    def test_a_410_deactivates_the_device_and_is_not_retried(self, acme, pushsvc):
        device = webpush_device(pushsvc, acme)
        pushsvc.replies["ann-laptop"] = [Reply(410, b"push subscription has unsubscribed or expired")]
        delivery = one_delivery(acme)
        result = push_send(delivery_id=delivery.pk, final_attempt=False)  # even with attempts left
        assert result.as_dict()["device_deactivated"] is True
        delivery.refresh_from_db()
        device.refresh_from_db()
        assert delivery.status == "failed" and "HTTP 410" in delivery.last_error
        assert device.is_active is False and "HTTP 410" in device.last_error and device.deactivated_at
        assert queue_push(tenant_id=acme.pk, user_ref="user-1", title="Again", body="x") == 0

    def test_a_429_defers_the_job_with_the_row_back_to_queued(self, acme, pushsvc):
        webpush_device(pushsvc, acme)
        pushsvc.replies["ann-laptop"] = [Reply(429, b"slow down", {"Retry-After": "30"})]
        delivery = one_delivery(acme)
        with pytest.raises(DeferJob) as info:
            push_send_job(delivery_id=delivery.pk)
        assert info.value.seconds == 30
        delivery.refresh_from_db()
        assert delivery.status == "queued" and "HTTP 429" in delivery.last_error

    def test_a_5xx_is_transient(self, acme, pushsvc):
        webpush_device(pushsvc, acme)
        pushsvc.replies["ann-laptop"] = [Reply(503, b"overloaded")]
        delivery = one_delivery(acme)
        with pytest.raises(PushSendFailed) as info:
            push_send(delivery_id=delivery.pk, final_attempt=False)
        assert info.value.transient is True
        delivery.refresh_from_db()
        assert delivery.status == "queued" and "HTTP 503" in delivery.last_error
        assert push_send(delivery_id=delivery.pk, final_attempt=False).status == "sent"

    def test_an_endpoint_on_a_refused_address_is_blocked_without_a_connection(self, acme, pushsvc, settings):
        # The guard is on and nothing is allowed: a loopback endpoint stands for any internal address.
        with RawServer(lambda request: [response(status="201 Created")]) as internal:
            _, subscriber = pushsvc.subscribe("internal")
            pk = register_device(tenant_id=acme.pk, user_ref="user-1", platform="webpush",
                                 endpoint=internal.url("/push/internal"), p256dh=subscriber.p256dh,
                                 auth=subscriber.auth)
            settings.OUTBOUND_ALLOWED_NETWORKS = []
            delivery = one_delivery(acme)
            result = push_send_job(delivery_id=delivery.pk)
            assert internal.accepted == 0
        assert result["device_deactivated"] is True
        delivery.refresh_from_db()
        assert delivery.status == "failed" and "destination guard" in delivery.last_error
        assert Device.objects.get(pk=pk).is_active is False

    def test_without_vapid_keys_the_delivery_fails_once_as_not_configured(self, acme, pushsvc, settings):
        webpush_device(pushsvc, acme)
        settings.WEBPUSH_VAPID_PRIVATE_KEY = ""
        delivery = one_delivery(acme)
        with pytest.raises(PushSendFailed) as info:
            push_send(delivery_id=delivery.pk, final_attempt=False)
        assert info.value.transient is False
        delivery.refresh_from_db()
        assert delivery.status == "failed"
        assert delivery.last_error == (
            "Web Push is not configured: set WEBPUSH_VAPID_PRIVATE_KEY and WEBPUSH_VAPID_SUBJECT")
        assert pushsvc.messages == []
        assert Device.objects.get().is_active  # the device is fine; our configuration is not


class FcmTests:
    def test_it_sends_with_a_token_from_the_oauth_server_and_reuses_it(self, acme, fcmsvc):
        fcm_device(acme)
        fcm_device(acme, token="fcm-token-ann-tablet-987654321")
        assert queue_push(tenant_id=acme.pk, user_ref="user-1", title="Shipped", body="Order 42",
                          data={"order": "42", "count": 3}) == 2
        for delivery in PushDelivery.objects.all():
            assert push_send_job(delivery_id=delivery.pk)["status"] == "sent"
        assert fcmsvc.problems == []
        assert fcmsvc.token_requests == 1  # one signed assertion, the access token cached for the second send
        first = fcmsvc.messages[0]["message"]
        assert set(first) == {"token", "notification", "data"}
        assert first["notification"] == {"title": "Shipped", "body": "Order 42"}
        assert first["data"] == {"order": "42", "count": "3"}  # FCM data values are strings
        assert {m["message"]["token"] for m in fcmsvc.messages} == {"fcm-token-ann-phone-0123456789",
                                                                    "fcm-token-ann-tablet-987654321"}

    def test_unregistered_deactivates_the_device(self, acme, fcmsvc):
        device = fcm_device(acme)
        fcmsvc.replies.append(fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"))
        delivery = one_delivery(acme)
        assert push_send_job(delivery_id=delivery.pk)["device_deactivated"] is True
        device.refresh_from_db()
        assert device.is_active is False and "UNREGISTERED" in device.last_error

    def test_quota_exceeded_defers(self, acme, fcmsvc):
        fcm_device(acme)
        fcmsvc.replies.append(fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED",
                                        **{"Retry-After": "12"}))
        delivery = one_delivery(acme)
        with pytest.raises(DeferJob) as info:
            push_send_job(delivery_id=delivery.pk)
        assert info.value.seconds == 12
        assert PushDelivery.objects.get().status == "queued"

    def test_unavailable_is_transient_and_invalid_argument_fails(self, acme, fcmsvc):
        fcm_device(acme)
        fcmsvc.replies.append(fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"))
        fcmsvc.replies.append(fcm_error(400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value'",
                                        "INVALID_ARGUMENT"))
        delivery = one_delivery(acme)
        with pytest.raises(PushSendFailed) as transient:
            push_send(delivery_id=delivery.pk, final_attempt=False)
        assert transient.value.transient is True
        assert PushDelivery.objects.get().status == "queued"
        with pytest.raises(PushSendFailed) as permanent:
            push_send(delivery_id=delivery.pk, final_attempt=False)
        assert permanent.value.transient is False
        delivery.refresh_from_db()
        assert delivery.status == "failed" and "INVALID_ARGUMENT" in delivery.last_error
        assert Device.objects.get().is_active

    def test_a_bad_assertion_is_refused_by_the_oauth_server(self, acme, fcmsvc, tmp_path, settings):
        import json

        other = FcmService()  # a different key for the same service account: the signature fails
        account = other.service_account() | {"token_uri": f"{fcmsvc.origin}/token",
                                             "client_email": fcmsvc.client_email}
        path = tmp_path / "wrong.json"
        path.write_text(json.dumps(account))
        settings.FCM_CREDENTIALS_FILE = str(path)
        other.stop()
        fcm_device(acme)
        delivery = one_delivery(acme)
        with pytest.raises(PushSendFailed, match="FCM OAuth token refused"):
            push_send(delivery_id=delivery.pk, final_attempt=True)
        assert fcmsvc.token_requests == 0 and fcmsvc.messages == []
        assert "token request" in fcmsvc.problems[0]

    def test_without_credentials_the_delivery_fails_once_as_not_configured(self, acme, settings):
        settings.FCM_CREDENTIALS_FILE = ""
        fcm.forget_token()
        fcm_device(acme)
        delivery = one_delivery(acme)
        with pytest.raises(PushSendFailed) as info:
            push_send_job(delivery_id=delivery.pk)
        assert info.value.transient is False
        assert PushDelivery.objects.get().last_error == "FCM is not configured: set FCM_CREDENTIALS_FILE"


class SecretTests:
    def test_an_expired_bearer_token_is_dropped_and_fetched_again(self, acme, fcmsvc):
        fcm_device(acme)
        queue_push(tenant_id=acme.pk, user_ref="user-1", title="One", body="x", key="one")
        queue_push(tenant_id=acme.pk, user_ref="user-1", title="Two", body="x", key="two")
        one, two = PushDelivery.objects.order_by("id")
        assert push_send_job(delivery_id=one.pk)["status"] == "sent"
        fcmsvc.issued.clear()  # the server no longer accepts the token it issued (revoked, expired)
        with pytest.raises(PushSendFailed) as info:
            push_send(delivery_id=two.pk, final_attempt=False)
        assert info.value.transient is True and "UNAUTHENTICATED" in str(info.value)
        assert push_send(delivery_id=two.pk, final_attempt=False).status == "sent"
        assert fcmsvc.token_requests == 2

    def test_logs_and_rows_carry_no_key_token_or_endpoint_path(self, acme, pushsvc, fcmsvc, vapid, caplog):
        webpush_device(pushsvc, acme, name="secret-capability-path")
        fcm_device(acme)
        pushsvc.replies["secret-capability-path"] = [Reply(503, b"down")]
        queue_push(tenant_id=acme.pk, user_ref="user-1", title="Hi", body="x")
        with caplog.at_level("DEBUG"):
            for delivery in PushDelivery.objects.all():
                try:
                    push_send(delivery_id=delivery.pk, final_attempt=False)
                except PushSendFailed:
                    pass
        text = caplog.text + " ".join(PushDelivery.objects.values_list("last_error", flat=True))
        assert "127.0.0.1" in caplog.text  # the calls were logged, by origin
        for secret in ("secret-capability-path", vapid.private_raw, *fcmsvc.issued, ANN_PHONE):
            assert secret not in text
