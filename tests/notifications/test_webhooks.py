"""Outbound webhooks: publishing, signing, outcomes and the destination guard, against local receivers.

The dispatcher runs in the test process here (its sends go to real loopback receivers that
verify with ``standardwebhooks``); test_webhook_worker.py runs it in real worker processes.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks import Webhook

from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from notifications.providers import webhooks as wire
from notifications.services import publish_event, rotate_endpoint_secret
from notifications.services.webhook_dispatch import claim, dispatch, recover_abandoned
from tests.broxiva.http_servers import RawServer
from tests.broxiva.http_servers import response as raw_response
from tests.notifications.receivers import OK, Receiver

LOOPBACK = ["127.0.0.0/8"]
Status = WebhookDelivery.Status


@pytest.fixture
def allow_loopback(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = LOOPBACK
    settings.WEBHOOK_TIMEOUT = 5


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def endpoint(tenant, url, **fields) -> WebhookEndpoint:
    e = WebhookEndpoint(tenant=tenant, url=url, **fields)
    e.full_clean()
    e.save()
    return e


def deliver() -> None:
    """Run the dispatcher as a worker's dispatch job would, in this process."""
    dispatch(budget_seconds=20, concurrency=8)


def make_due(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now())


# --- Publishing ----------------------------------------------------------------------------------


@pytest.mark.django_db
class PublishTests:
    def test_it_fans_out_to_active_subscribed_endpoints_of_the_tenant_only(self, acme, globex):
        every = endpoint(acme, "https://hooks.acme.test/all")
        orders = endpoint(acme, "https://hooks.acme.test/orders", event_types=["order.created"])
        endpoint(acme, "https://hooks.acme.test/products", event_types=["product.updated"])
        endpoint(acme, "https://hooks.acme.test/off", is_active=False)
        endpoint(globex, "https://hooks.globex.test/all")
        msg_id = publish_event(tenant_id=acme.id, event_type="order.created", payload={"id": 7})
        assert msg_id.startswith("msg_") and len(msg_id) == 30
        message = WebhookMessage.objects.get(id=msg_id)
        assert (message.tenant, message.event_type, message.payload) == (acme, "order.created", {"id": 7})
        assert set(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == {every.id, orders.id}
        assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"pending"}

    def test_the_same_key_returns_the_same_message_with_one_delivery(self, acme, globex):
        endpoint(acme, "https://hooks.acme.test/all")
        first = publish_event(tenant_id=acme.id, event_type="order.paid", payload={"id": 1}, key="order-1-paid")
        again = publish_event(tenant_id=acme.id, event_type="order.paid", payload={"id": 1}, key="order-1-paid")
        other = publish_event(tenant_id=globex.id, event_type="order.paid", payload={"id": 1}, key="order-1-paid")
        assert first == again != other
        assert WebhookDelivery.objects.filter(message_id=first).count() == 1

    @pytest.mark.parametrize(
        "fields, problem",
        [
            ({"event_type": ""}, "event_type"),
            ({"event_type": "order created"}, "event_type"),
            ({"payload": [1, 2]}, "JSON object"),
            ({"payload": {"when": timezone}}, "JSON-serialisable"),
            ({"payload": {"x": float("nan")}}, "JSON-serialisable"),
            ({"key": ""}, "key"),
            ({"tenant_id": 999_999}, "no tenant"),
        ],
    )
    def test_it_refuses_bad_input_before_storing_anything(self, acme, fields, problem):
        endpoint(acme, "https://hooks.acme.test/all")
        args = {"tenant_id": acme.id, "event_type": "order.created", "payload": {"id": 1}, **fields}
        with pytest.raises(ValueError, match=problem):
            publish_event(**args)
        assert not WebhookMessage.objects.exists() and not WebhookDelivery.objects.exists()

    def test_a_dispatch_is_asked_for_after_commit_only(self, acme, django_capture_on_commit_callbacks):
        from broxiva.queues import get_queue

        endpoint(acme, "https://hooks.acme.test/all")
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            assert get_queue("webhook-delivery").count == 0
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
        assert [c.__name__ for c in callbacks if hasattr(c, "__name__")] == ["request_dispatch"] * 2
        # One dispatch job for both events, carrying no arguments (no URL, payload or secret in Redis).
        (job,) = get_queue("webhook-delivery").jobs
        assert job.func_name == "notifications.jobs.webhooks.webhook_dispatch_job"
        assert job.args == () and job.kwargs == {}

    @pytest.mark.parametrize(
        "url, problem",
        [
            ("ftp://hooks.acme.test/x", "https:// or http://"),
            ("https:///path", "host"),
            ("https://user:pw@hooks.acme.test/x", "credentials"),
            ("http://127.0.0.1:8080/x", "loopback"),
            ("http://169.254.169.254/latest/meta-data", "link-local"),
            ("http://10.1.2.3/x", "private"),
            ("http://[::1]/x", "loopback"),
        ],
    )
    def test_an_endpoint_url_is_checked_when_it_is_created(self, acme, url, problem):
        with pytest.raises(ValidationError, match=problem):
            endpoint(acme, url)

    def test_a_new_endpoint_gets_a_standard_webhooks_secret(self, acme):
        e = endpoint(acme, "https://hooks.acme.test/all")
        assert e.secret.startswith("whsec_")
        Webhook(e.secret)  # the reference library accepts it
        assert endpoint(acme, "https://hooks.acme.test/2").secret != e.secret


# --- Signing and sending -------------------------------------------------------------------------


@pytest.mark.django_db
class DeliveryTests:
    def test_the_receiver_verifies_the_signed_body_it_gets(self, acme, allow_loopback, receiver):
        e = endpoint(acme, receiver.url())
        receiver.secrets = [e.secret]
        payload = {"order": {"id": 42, "total": "19.90", "note": "café ☕"}, "items": [1, 2]}
        msg_id = publish_event(tenant_id=acme.id, event_type="order.created", payload=payload)
        deliver()
        (got,) = receiver.received
        assert got.verified_by == [e.secret] and got.errors == []
        assert got.headers["webhook-id"] == msg_id
        assert got.headers["content-type"] == "application/json"
        assert json.loads(got.body) == payload
        assert got.body == wire.serialise(WebhookMessage.objects.get(id=msg_id).payload)
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
        (attempt,) = delivery.attempt_rows.all()
        assert (attempt.number, attempt.succeeded, attempt.status_code, attempt.response_excerpt) == (
            1,
            True,
            200,
            "ok",
        )

    def test_during_a_rotation_both_secrets_sign_and_each_verifies(self, acme, allow_loopback, receiver):
        e = endpoint(acme, receiver.url())
        old = e.secret
        new = rotate_endpoint_secret(e.id)
        assert new != old and new.startswith("whsec_")
        receiver.secrets = [old, new]
        publish_event(tenant_id=acme.id, event_type="a.b", payload={"n": 1})
        deliver()
        (got,) = receiver.received
        assert sorted(got.verified_by) == sorted([old, new])
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        # After the overlap only the new secret signs.
        WebhookEndpoint.objects.filter(id=e.id).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
        publish_event(tenant_id=acme.id, event_type="a.b", payload={"n": 2})
        deliver()
        assert receiver.received[1].verified_by == [new]
        assert receiver.received[1].errors == ["No matching signature found"]

    def test_500_500_200_makes_three_attempts_with_one_webhook_id(self, acme, allow_loopback, settings):
        settings.QUEUE_OVERRIDES = {"webhook-delivery": {"backoff_base": 0}}  # retries due at once
        with Receiver(script=[(500, {}, b"boom"), (500, {}, b"boom"), OK]) as receiver:
            e = endpoint(acme, receiver.url())
            receiver.secrets = [e.secret]
            msg_id = publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            deliver()
        assert [r.headers["webhook-id"] for r in receiver.received] == [msg_id] * 3
        assert all(r.verified_by == [e.secret] for r in receiver.received)
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("succeeded", 3)
        rows = list(delivery.attempt_rows.values_list("number", "status_code", "succeeded", "error"))
        assert rows == [(1, 500, False, "HTTP 500"), (2, 500, False, "HTTP 500"), (3, 200, True, "")]

    def test_a_failure_is_retried_on_the_queue_policy_schedule_until_attempts_run_out(
        self, acme, allow_loopback, settings
    ):
        with Receiver(script=[(502, {}, b"bad gateway")]) as receiver:
            e = endpoint(acme, receiver.url())
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            delivery = WebhookDelivery.objects.get()
            before = timezone.now()
            deliver()
            delivery.refresh_from_db()
            # First retry 5 s later (Standard Webhooks: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
            assert (delivery.status, delivery.attempts) == ("pending", 1)
            assert before + timedelta(seconds=4) < delivery.next_attempt_at < timezone.now() + timedelta(seconds=6)
            for _ in range(7):
                make_due(delivery)
                deliver()
            delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("failed", 8)
        assert delivery.last_error == "HTTP 502 (attempts exhausted)"
        assert receiver.count == 8 and delivery.attempt_rows.count() == 8
        deliver()  # nothing left to send
        assert receiver.count == 8
        assert e.deliveries.filter(status="failed").count() == 1

    def test_410_disables_the_endpoint_and_stops(self, acme, allow_loopback):
        with Receiver(script=[(410, {}, b"gone")]) as receiver:
            e = endpoint(acme, receiver.url())
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            deliver()
            delivery = WebhookDelivery.objects.get()
            e.refresh_from_db()
            assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 410)
            assert "410" in delivery.last_error and "410" in e.disabled_reason
            assert not e.is_active and e.disabled_at is not None
            # Published afterwards: no delivery. Queued before the 410: failed without a try.
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            assert WebhookDelivery.objects.count() == 1
            WebhookDelivery.objects.create(
                message=WebhookMessage.objects.create(tenant=acme, event_type="a.b", payload={}), endpoint=e
            )
            deliver()
        assert receiver.count == 1
        late = WebhookDelivery.objects.exclude(id=delivery.id).get()
        assert late.status == "failed" and late.last_error.startswith("endpoint disabled: 410")

    @pytest.mark.parametrize("status", [429, 503])
    def test_retry_after_defers_without_spending_an_attempt(self, acme, allow_loopback, settings, status):
        settings.WEBHOOK_RETRY_AFTER_MAX = 600
        with Receiver(
            script=[(status, {"Retry-After": "120"}, b"slow down"), (status, {"Retry-After": "86400"}, b""), OK]
        ) as receiver:
            endpoint(acme, receiver.url())
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            delivery = WebhookDelivery.objects.get()
            before = timezone.now()
            deliver()
            delivery.refresh_from_db()
            assert (delivery.status, delivery.attempts, delivery.deferrals) == ("pending", 0, 1)
            assert before + timedelta(seconds=119) < delivery.next_attempt_at < timezone.now() + timedelta(seconds=121)
            make_due(delivery)
            deliver()
            delivery.refresh_from_db()
            # A day's Retry-After is capped at WEBHOOK_RETRY_AFTER_MAX.
            assert delivery.next_attempt_at < timezone.now() + timedelta(seconds=601)
            make_due(delivery)
            deliver()
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.deferrals) == ("succeeded", 1, 2)
        rows = list(delivery.attempt_rows.values_list("number", "deferred", "status_code"))
        assert rows == [(1, True, status), (1, True, status), (1, False, 200)]

    def test_a_status_without_retry_after_spends_an_attempt(self, acme, allow_loopback):
        with Receiver(script=[(429, {}, b"")]) as receiver:
            endpoint(acme, receiver.url())
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            deliver()
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.deferrals) == ("pending", 1, 0)

    def test_a_timeout_is_recorded_and_retried(self, acme, allow_loopback, settings):
        settings.WEBHOOK_TIMEOUT = 0.3
        with Receiver(delay=2) as receiver:
            endpoint(acme, receiver.url())
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            deliver()
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        (attempt,) = delivery.attempt_rows.all()
        assert attempt.status_code is None and "timed out" in attempt.error
        assert receiver.count == 1

    def test_a_refused_connection_is_retried(self, acme, allow_loopback):
        with Receiver() as gone:
            url = gone.url()
        endpoint(acme, url)
        publish_event(tenant_id=acme.id, event_type="a.b", payload={})
        deliver()
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert "connection failed" in delivery.last_error

    def test_the_response_excerpt_is_short_and_holds_no_secret(self, acme, allow_loopback):
        def echo(request):
            body = (request.headers["webhook-signature"] + " " + secret + " " + "x" * 5000).encode()
            return [raw_response(body, status="400 Bad Request")]

        with RawServer(echo) as server:
            e = endpoint(acme, server.url("/hook"))
            secret = e.secret
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            deliver()
        (attempt,) = WebhookAttempt.objects.all()
        assert attempt.status_code == 400
        assert len(attempt.response_excerpt.encode()) <= 1024
        assert secret not in attempt.response_excerpt and secret[6:] not in attempt.response_excerpt
        assert "v1," not in attempt.response_excerpt and "xxxx" in attempt.response_excerpt


@pytest.mark.django_db
class SecretHygieneTests:
    def test_no_secret_or_signature_reaches_the_logs(self, acme, allow_loopback, settings, caplog):
        settings.QUEUE_OVERRIDES = {"webhook-delivery": {"backoff_base": 0}}
        caplog.set_level(logging.DEBUG)
        with Receiver(script=[(500, {}, b"no"), (429, {"Retry-After": "0"}, b""), OK]) as receiver:
            e = endpoint(acme, receiver.url("/hook?token=abc"))
            rotate_endpoint_secret(e.id)
            e.refresh_from_db()
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            deliver()
        assert receiver.count == 3
        text = "\n".join(record.getMessage() for record in caplog.records)
        assert "http POST http://127.0.0.1" in text  # the sends were logged...
        for secret in (e.secret, e.previous_secret):
            assert secret not in text and secret[6:] not in text  # ...without secrets,
        for got in receiver.received:
            for signature in got.headers["webhook-signature"].split(" "):
                assert signature[3:] not in text  # signatures
        assert "token=abc" not in text  # or the query string


# --- The destination guard -------------------------------------------------------------------------


@pytest.mark.django_db
class GuardTests:
    """Guard on (no OUTBOUND_ALLOWED_NETWORKS): tenant URLs may not reach loopback or private addresses."""

    def make(self, tenant, url) -> WebhookEndpoint:
        # Saved without full_clean(): the URL check at creation would refuse the literal ones,
        # and a name can start resolving to a private address after it was saved.
        return WebhookEndpoint.objects.create(tenant=tenant, url=url)

    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
    def test_a_loopback_receiver_is_never_contacted(self, acme, host, settings):
        settings.OUTBOUND_ALLOWED_NETWORKS = []
        with RawServer(lambda r: [raw_response("ok")]) as server:
            self.make(acme, f"http://{host}:{server.port}/hook")
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            deliver()
            assert server.accepted == 0
        delivery = WebhookDelivery.objects.get()
        # A refused destination is permanent: failed at once, not retried for days.
        assert (delivery.status, delivery.attempts) == ("failed", 1)
        assert "loopback" in delivery.last_error

    def test_the_metadata_address_is_refused_before_any_connection(self, acme, settings, monkeypatch):
        import socket

        settings.OUTBOUND_ALLOWED_NETWORKS = []

        def no_connect(*args, **kwargs):
            raise AssertionError("a connection was attempted")

        self.make(acme, "http://169.254.169.254/latest/meta-data/")
        publish_event(tenant_id=acme.id, event_type="a.b", payload={})
        with monkeypatch.context() as patched:  # the database connection is already open
            patched.setattr(socket, "create_connection", no_connect)
            patched.setattr(socket.socket, "connect", no_connect)
            deliver()
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "failed" and "link-local" in delivery.last_error


# --- At most once, and a dispatcher that died ------------------------------------------------------


@pytest.mark.django_db
class ClaimTests:
    def test_a_claimed_delivery_cannot_be_claimed_again(self, acme):
        endpoint(acme, "https://hooks.acme.test/all")
        publish_event(tenant_id=acme.id, event_type="a.b", payload={})
        (first,) = claim(limit=10)
        assert first.status == "sending" and claim(limit=10) == []

    def test_a_delivered_delivery_is_not_sent_again_by_a_second_dispatch(self, acme, allow_loopback, receiver):
        endpoint(acme, receiver.url())
        publish_event(tenant_id=acme.id, event_type="a.b", payload={})
        deliver()
        WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(days=1))
        deliver()
        assert receiver.count == 1

    def test_an_abandoned_claim_is_recovered_after_its_lease(self, acme, allow_loopback, receiver, settings):
        endpoint(acme, receiver.url())
        publish_event(tenant_id=acme.id, event_type="a.b", payload={})
        (row,) = claim(limit=10)  # a dispatcher claimed it, then died
        assert recover_abandoned() == 0  # still within its lease
        deliver()
        assert receiver.count == 0
        WebhookDelivery.objects.update(claimed_at=timezone.now() - timedelta(seconds=settings.WEBHOOK_TIMEOUT + 61))
        deliver()
        row.refresh_from_db()
        assert receiver.count == 1 and (row.status, row.attempts) == ("succeeded", 2)
        assert list(row.attempt_rows.values_list("number", "succeeded")) == [(1, False), (2, True)]
        assert "interrupted" in row.attempt_rows.first().error

    def test_a_resend_is_a_new_delivery_with_the_same_webhook_id(self, acme, allow_loopback, receiver):
        from notifications.services.webhooks import resend_delivery

        e = endpoint(acme, receiver.url())
        receiver.secrets = [e.secret]
        msg_id = publish_event(tenant_id=acme.id, event_type="a.b", payload={"x": 1})
        deliver()
        original = WebhookDelivery.objects.get()
        again = resend_delivery(delivery_id=original.id)
        deliver()
        assert WebhookDelivery.objects.get(id=again).resend_of_id == original.id
        assert [r.headers["webhook-id"] for r in receiver.received] == [msg_id, msg_id]
        assert all(r.verified_by for r in receiver.received)


@pytest.mark.django_db
class RetrySchedulingTests:
    def test_one_dispatch_is_scheduled_per_retry_second(self):
        from broxiva.queues import get_queue
        from notifications.services.webhooks import schedule_dispatch

        now = timezone.now().replace(microsecond=0)
        schedule_dispatch([now + timedelta(seconds=5, milliseconds=100), now + timedelta(seconds=5, milliseconds=600)])
        schedule_dispatch([now + timedelta(seconds=5, milliseconds=300), now + timedelta(seconds=300)])
        registry = get_queue("webhook-delivery").scheduled_job_registry
        jobs = [get_queue("webhook-delivery").fetch_job(i) for i in registry.get_job_ids()]
        assert sorted(registry.get_scheduled_time(j).timestamp() for j in jobs) == [
            (now + timedelta(seconds=6)).timestamp(),  # rounded up: never before the retry is due
            (now + timedelta(seconds=300)).timestamp(),
        ]
        assert all(j.func_name == "notifications.jobs.webhooks.webhook_dispatch_job" and j.kwargs == {} for j in jobs)
        assert all(j.timeout == 60 and j.retries_left == 7 for j in jobs)
