"""The device admin masks keys and tokens; push deliveries are read-only; Web Push settings."""

from __future__ import annotations

import pytest

from notifications.models import Device, PushDelivery
from notifications.services import queue_push, register_device
from tests.broxiva.test_settings import manage
from tests.notifications.push_servers import Subscriber, VapidKeys

DEVICES = "/admin/notifications/device/"
DELIVERIES = "/admin/notifications/pushdelivery/"
TOKEN = "fcm-registration-token-ann-phone-7f3a9c2e1b"


@pytest.mark.django_db
class PushAdminTests:
    def test_devices_show_the_endpoint_and_mask_keys_and_tokens(self, admin_client, acme):
        subscriber = Subscriber()
        web = register_device(tenant_id=acme.pk, user_ref="user-1", platform="webpush",
                              endpoint="https://push.example.test/wpush/v2/abc", p256dh=subscriber.p256dh,
                              auth=subscriber.auth)
        phone = register_device(tenant_id=acme.pk, user_ref="user-1", platform="fcm", token=TOKEN)
        listing = admin_client.get(DEVICES)
        assert listing.status_code == 200 and "push.example.test/wpush" in listing.text
        detail = admin_client.get(f"{DEVICES}{web}/change/")
        assert "https://push.example.test/wpush/v2/abc" in detail.text
        assert subscriber.p256dh not in detail.text and subscriber.auth not in detail.text
        assert TOKEN not in admin_client.get(f"{DEVICES}{phone}/change/").text
        assert TOKEN not in listing.text

    def test_the_deactivate_action_records_who(self, admin_client, acme):
        phone = register_device(tenant_id=acme.pk, user_ref="user-1", platform="fcm", token=TOKEN)
        admin_client.post(DEVICES, {"action": "deactivate", "_selected_action": [phone]})
        device = Device.objects.get(pk=phone)
        assert device.is_active is False and "deactivated by admin in the admin" in device.last_error

    def test_deliveries_are_listed_read_only(self, admin_client, acme):
        register_device(tenant_id=acme.pk, user_ref="user-1", platform="fcm", token=TOKEN)
        queue_push(tenant_id=acme.pk, user_ref="user-1", title="Order shipped", body="x")
        delivery = PushDelivery.objects.get()
        page = admin_client.get(DELIVERIES)
        assert page.status_code == 200 and "Order shipped" in page.text and "By status" in page.text
        assert admin_client.get(DELIVERIES, {"q": "user-1"}).context["cl"].result_count == 1
        assert admin_client.post(f"{DELIVERIES}{delivery.pk}/change/", {"title": "x"}).status_code == 403
        assert TOKEN not in admin_client.get(f"{DELIVERIES}{delivery.pk}/change/").text


class WebPushSettingsTests:
    @pytest.mark.parametrize(("env", "message"), [
        ({"WEBPUSH_VAPID_PRIVATE_KEY": "not-a-key", "WEBPUSH_VAPID_SUBJECT": "mailto:ops@acme.test"},
         "WEBPUSH_VAPID_PRIVATE_KEY must be a raw P-256 private key"),
        ({"WEBPUSH_VAPID_PRIVATE_KEY": VapidKeys().private_raw}, "WEBPUSH_VAPID_SUBJECT must be a mailto:"),
        ({"FCM_URL": "ftp://fcm.test"}, "FCM_URL must be an http(s):// URL"),
    ])
    def test_a_bad_value_stops_start_up(self, tmp_path, env, message):
        result = manage("check", tmp_path=tmp_path, DEBUG="true", **env)
        assert result.returncode != 0
        assert message in result.stderr

    def test_the_vapid_key_can_come_from_a_file(self, tmp_path):
        key = VapidKeys().private_raw
        (tmp_path / "vapid").write_text(key + "\n")
        result = manage("shell", "-c", "from django.conf import settings; print(settings.WEBPUSH_VAPID_PRIVATE_KEY)",
                        tmp_path=tmp_path, DEBUG="true", WEBPUSH_VAPID_PRIVATE_KEY_FILE=str(tmp_path / "vapid"),
                        WEBPUSH_VAPID_SUBJECT="https://acme.test/contact")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == key
