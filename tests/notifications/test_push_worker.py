"""Push through a real rqworker process and a local Web Push service: sent, retried, deferred."""

from __future__ import annotations

import pytest
from rq.job import JobStatus

from broxiva.queues import get_queue
from notifications.models import Device, PushDelivery
from notifications.services import queue_push, register_device
from tests.notifications.push_servers import Reply, VapidKeys, WebPushService
from tests.workers import running_worker, wait_for, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pushsvc():
    service = WebPushService(VapidKeys())
    yield service
    service.stop()


def test_a_real_worker_sends_retries_a_5xx_and_defers_a_429(acme, pushsvc, settings):
    settings.QUEUE_OVERRIDES = {"notification": {"backoff_base": 1}}  # the policy's curve, faster
    for name in ("ok", "flaky", "limited"):
        endpoint, subscriber = pushsvc.subscribe(name)
        register_device(tenant_id=acme.pk, user_ref="user-1", platform="webpush", endpoint=endpoint,
                        p256dh=subscriber.p256dh, auth=subscriber.auth)
    pushsvc.replies["flaky"] = [Reply(502, b"bad gateway")]
    pushsvc.replies["limited"] = [Reply(429, b"too many", {"Retry-After": "300"})]
    assert queue_push(tenant_id=acme.pk, user_ref="user-1", title="Shipped", body="Order 42") == 3
    rows = {d.device.endpoint.rsplit("/", 1)[-1]: d for d in PushDelivery.objects.select_related("device")}
    env = worker_env(WEBPUSH_VAPID_PRIVATE_KEY=pushsvc.vapid.private_raw, WEBPUSH_VAPID_SUBJECT="mailto:ops@acme.test",
                     OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8")
    queue = get_queue("notification")
    with running_worker("notification", env=env):
        wait_for(lambda: set(PushDelivery.objects.filter(pk__in=[rows["ok"].pk, rows["flaky"].pk])
                             .values_list("status", flat=True)) == {"sent"},
                 timeout=45, what="the ok and the retried deliveries to be sent")
        wait_for(lambda: queue.fetch_job(rows["limited"].job_id).get_status() == JobStatus.SCHEDULED,
                 timeout=30, what="the rate-limited delivery to be deferred")
    assert all(m.problems == [] for m in pushsvc.messages)
    assert sorted(m.path.rsplit("/", 1)[-1] for m in pushsvc.messages) == ["flaky", "flaky", "limited", "ok"]
    flaky = PushDelivery.objects.get(pk=rows["flaky"].pk)
    assert flaky.attempts == 2
    assert queue.fetch_job(flaky.job_id).retries_left == 1  # one retry of the policy's two spent
    limited_job = queue.fetch_job(rows["limited"].job_id)
    assert limited_job.retries_left == 2  # the deferral spent no attempt
    assert limited_job.meta.get("broxiva_deferrals") == 1
    limited = PushDelivery.objects.get(pk=rows["limited"].pk)
    assert limited.status == "queued" and "HTTP 429" in limited.last_error
    assert Device.objects.filter(is_active=True).count() == 3
