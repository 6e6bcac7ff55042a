"""Webhook deliveries through real ``rqworker`` processes: retries, concurrency, a crash, the periodic entry."""

from __future__ import annotations

import json
import os
import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from broxiva.queues import get_queue
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications.services import publish_event
from tests.notifications.receivers import OK, Receiver
from tests.workers import running_worker, start_worker, stop, wait_for, worker_env

QUEUE = "webhook-delivery"
DISPATCH = "notifications.jobs.webhooks.webhook_dispatch_job"


def env(**extra: str) -> dict[str, str]:
    return worker_env(
        **{"OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8", "WEBHOOK_TIMEOUT": "5", "LOG_LEVEL": "DEBUG", **extra}
    )


def endpoint(tenant, url: str) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(tenant=tenant, url=url)


def delivered(count: int):
    return lambda: WebhookDelivery.objects.filter(status="succeeded").count() >= count


@pytest.mark.django_db(transaction=True)
class WorkerTests:
    def test_500_500_200_is_delivered_on_the_third_attempt_with_one_webhook_id(self, acme):
        # The queue policy's curve, shortened for the test: every retry waits 1 s.
        overrides = json.dumps({QUEUE: {"backoff_base": 1, "max_delay": 1}})
        with Receiver(script=[(500, {}, b"oops"), (500, {}, b"oops"), OK]) as receiver:
            e = endpoint(acme, receiver.url())
            receiver.secrets = [e.secret]
            msg_id = publish_event(tenant_id=acme.id, event_type="order.created", payload={"id": 1})
            (job,) = get_queue(QUEUE).jobs  # queued by the commit
            assert job.func_name == DISPATCH
            with running_worker(QUEUE, env=env(QUEUE_OVERRIDES=overrides)) as worker:
                wait_for(delivered(1), timeout=60, what="the third attempt to succeed")
                log = stop(worker)
        assert [r.headers["webhook-id"] for r in receiver.received] == [msg_id] * 3
        assert all(r.verified_by == [e.secret] for r in receiver.received)
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("succeeded", 3)
        assert list(delivery.attempt_rows.values_list("number", "status_code")) == [(1, 500), (2, 500), (3, 200)]
        # The secret and the signatures never reach the worker's log, even at DEBUG.
        assert e.secret not in log and e.secret[6:] not in log
        assert all(r.headers["webhook-signature"][3:] not in log for r in receiver.received)

    def test_200_deliveries_go_out_concurrently_each_exactly_once_and_verified(self, acme):
        with Receiver(delay=0.05) as receiver:
            endpoints = [endpoint(acme, receiver.url(f"/hook/{n}")) for n in range(4)]
            receiver.secrets = lambda: [e.secret for e in endpoints]
            ids = [publish_event(tenant_id=acme.id, event_type="order.created", payload={"n": n}) for n in range(50)]
            # Duplicate dispatch jobs (a retried kick, the periodic entry) must not send anything twice.
            for _ in range(2):
                get_queue(QUEUE).enqueue(DISPATCH)
            with running_worker(
                QUEUE,
                burst=True,
                env=env(WEBHOOK_CONCURRENCY="32", LOG_LEVEL="INFO"),
                extra_args=("--worker-class", "broxiva.worker.BroxivaSimpleWorker"),
            ) as worker:
                wait_for(lambda: worker.poll() is not None, timeout=120, what="the burst worker to finish")
        assert receiver.count == 200
        pairs = [(r.path, r.headers["webhook-id"]) for r in receiver.received]
        assert len(set(pairs)) == 200 and {m for _, m in pairs} == set(ids)
        assert all(len(r.verified_by) == 1 for r in receiver.received)
        assert sorted(json.loads(r.body)["n"] for r in receiver.received) == sorted(list(range(50)) * 4)
        assert WebhookDelivery.objects.filter(status="succeeded", attempts=1).count() == 200
        assert WebhookAttempt.objects.filter(succeeded=True).count() == 200

    def test_deliveries_of_a_worker_killed_mid_send_are_sent_again_by_the_next_dispatch(self, acme, settings):
        with Receiver(delay=30) as slow:  # holds every request until the worker is dead
            e = endpoint(acme, slow.url())
            for n in range(3):
                publish_event(tenant_id=acme.id, event_type="a.b", payload={"n": n})
            worker = start_worker(QUEUE, env=env())
            try:
                wait_for(lambda: slow.count == 3, timeout=60, what="the sends to be in flight")
            finally:
                os.killpg(worker.pid, signal.SIGKILL)
                stop(worker)
        assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"sending"}
        # The lease runs out (WEBHOOK_TIMEOUT + 60 s; moved back in time rather than waited for).
        WebhookDelivery.objects.update(claimed_at=timezone.now() - timedelta(seconds=5 + 61))
        with Receiver() as receiver:
            WebhookEndpoint.objects.filter(id=e.id).update(url=receiver.url())
            get_queue(QUEUE).enqueue(DISPATCH)
            with running_worker(QUEUE, burst=True, env=env()) as worker:
                wait_for(lambda: worker.poll() is not None, timeout=60, what="the burst worker to finish")
        assert receiver.count == 3
        for delivery in WebhookDelivery.objects.all():
            assert (delivery.status, delivery.attempts) == ("succeeded", 2)
            assert "interrupted" in delivery.attempt_rows.get(number=1).error

    def test_the_periodic_entry_delivers_an_event_whose_dispatch_was_never_queued(self, acme):
        from broxiva.schedules import get_scheduler, register
        from notifications.schedules import SCHEDULES

        (entry,) = [s for s in SCHEDULES if s.id == "webhook-dispatch"]
        assert (entry.queue, entry.cron, entry.func) == (QUEUE, "* * * * *", DISPATCH)
        with Receiver() as receiver:
            endpoint(acme, receiver.url())
            publish_event(tenant_id=acme.id, event_type="a.b", payload={})
            get_queue(QUEUE).empty()  # the kick is lost (as if Redis had been down at the commit)
            scheduler = get_scheduler()
            register([entry], scheduler=scheduler)
            scheduler.connection.zadd(scheduler.scheduled_jobs_key, {entry.job_id: 0})
            scheduler.enqueue_jobs()
            assert get_queue(QUEUE).count == 1
            with running_worker(QUEUE, burst=True, env=env()) as worker:
                wait_for(lambda: worker.poll() is not None, timeout=60, what="the burst worker to finish")
        assert receiver.count == 1 and WebhookDelivery.objects.get().status == "succeeded"
