"""The job, the sweep and "verify now" with real rqworker processes, a real DNS server and Redis."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from broxiva.queues import get_queue
from domains.models import TenantDomain
from domains.services import add_domain, domains_sweep, verify_now
from notifications.models import OutboundEmail, WebhookMessage
from tests.domains.conftest import make_domain
from tests.workers import running_worker, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)
QUEUE = "domain-verification"


def _env(zone, **extra) -> dict[str, str]:
    return worker_env(DNS_NAMESERVERS=zone.address, DNS_TIMEOUT="1", DNS_LIFETIME="3", **extra)


def _burst(zone, **extra) -> None:
    with running_worker(QUEUE, burst=True, env=_env(zone, **extra)) as worker:
        wait_for(lambda: worker.poll() is not None, timeout=60, what="the burst worker to finish")


def _row(pk: int) -> TenantDomain:
    return TenantDomain.objects.get(pk=pk)


def test_an_added_domain_is_checked_by_a_worker_verified_and_the_tenant_told(acme, zone):
    d = add_domain(tenant_id=acme.pk, domain="Shop.Example.", method="dns_txt")
    assert get_queue(QUEUE).job_ids == [f"domain-verify-{d.pk}"]
    zone.set("_broxiva-verification.shop.example", "TXT", [f"broxiva-verification={d.token}"])
    _burst(zone)
    row = _row(d.pk)
    assert (row.status, row.checks, row.failure_reason) == ("verified", 0, "")
    (email,) = OutboundEmail.objects.filter(tenant=acme)
    assert email.to == ["ops@acme.test"] and email.template == "domain-verified"
    assert "shop.example is verified" in email.subject
    (message,) = WebhookMessage.objects.filter(tenant=acme)
    assert message.event_type == "domain.verified"
    assert message.payload["domain"] == "shop.example" and d.token not in json.dumps(message.payload)
    assert [(e.from_status, e.to_status) for e in row.events.order_by("created_at", "id")] == [
        ("", "pending"), ("pending", "verified")]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["servfail", "silent"])
def test_a_dns_failure_is_retried_by_the_queue_policy_without_counting_as_a_check(acme, zone, settings, how):
    overrides = {QUEUE: {"backoff_base": 1, "max_delay": 1}}
    settings.QUEUE_OVERRIDES = overrides
    name = "_broxiva-verification.shop.example"
    zone.fail(name, how)
    d = add_domain(tenant_id=acme.pk, domain="shop.example", method="dns_txt")
    env = _env(zone, QUEUE_OVERRIDES=json.dumps(overrides))
    env.update(DNS_TIMEOUT="0.5", DNS_LIFETIME="1")  # a silent server costs a second a lookup
    with running_worker(QUEUE, env=env):
        wait_for(lambda: zone.asked[(name, "TXT")] >= 3, timeout=60, what="the check to be retried")
        job = get_queue(QUEUE).fetch_job(f"domain-verify-{d.pk}")
        assert job.retries_left is not None and job.retries_left < 9  # the queue's policy retries it
        row = _row(d.pk)
        assert (row.status, row.checks, row.last_checked_at) == ("pending", 0, None)
        zone.fail(name, None)
        zone.set(name, "TXT", [f"broxiva-verification={d.token}"])
        wait_for(lambda: _row(d.pk).status == "verified", timeout=30, what="the retried check to verify it")
    assert _row(d.pk).checks == 0


def test_the_sweep_fans_out_one_job_per_due_domain_and_never_two(acme, globex, zone):
    now = timezone.now()
    due = [make_domain(acme, f"due{i}.example", next_check_at=now - timedelta(minutes=i)) for i in range(3)]
    make_domain(acme, "later.example", next_check_at=now + timedelta(minutes=5))
    make_domain(acme, "failed.example", status="failed")
    recheck = make_domain(globex, "live.example", status="verified", next_check_at=now - timedelta(seconds=1))
    asked = make_domain(globex, "asked.example", status="failed", verify_requested_at=now)
    report = domains_sweep()
    expected = {f"domain-verify-{d.pk}" for d in [*due, recheck, asked]}
    assert (report.due, report.enqueued, report.already_waiting) == (5, 5, 0)
    assert set(get_queue(QUEUE).job_ids) == expected
    report = domains_sweep()  # five minutes later, nothing has run yet
    assert (report.due, report.enqueued, report.already_waiting) == (5, 0, 5)
    assert sorted(get_queue(QUEUE).job_ids) == sorted(expected)
    for d in due:
        zone.set(f"_broxiva-verification.{d.domain}", "TXT", [f"broxiva-verification={d.token}"])
    _burst(zone)
    assert {_row(d.pk).status for d in due} == {"verified"}
    assert _row(recheck.pk).consecutive_misses == 1 and _row(recheck.pk).status == "verified"
    assert _row(asked.pk).verify_requested_at is None
    assert domains_sweep().due == 0


def test_the_sweep_is_a_periodic_entry_every_5_minutes_on_its_queue():
    from broxiva.schedules import collect

    (entry,) = [e for e in collect() if e.id == "domains-sweep"]
    assert (entry.queue, entry.cron, entry.func) == (QUEUE, "*/5 * * * *", "domains.jobs.domains_sweep_job")


def test_verify_now_jumps_the_queue(acme, zone):
    now = timezone.now()
    domains = [make_domain(acme, f"d{i}.example", next_check_at=now - timedelta(hours=1, minutes=-i))
               for i in range(4)]
    domains_sweep()
    queue = get_queue(QUEUE)
    assert queue.job_ids == [f"domain-verify-{d.pk}" for d in domains]
    last = domains[-1]
    assert verify_now(last.pk) == "moved"
    assert queue.job_ids == [f"domain-verify-{last.pk}"] + [f"domain-verify-{d.pk}" for d in domains[:-1]]
    fresh = make_domain(acme, "fresh.example", next_check_at=now + timedelta(days=1))
    assert verify_now(fresh.pk) == "enqueued"
    assert queue.job_ids[0] == f"domain-verify-{fresh.pk}" and len(queue.job_ids) == 5
    _burst(zone)
    order = sorted(TenantDomain.objects.all(), key=lambda r: r.last_checked_at)
    assert [r.pk for r in order[:2]] == [fresh.pk, last.pk]
    assert all(r.checks == 1 for r in order)  # each domain checked exactly once


def test_a_domain_pending_for_7_days_fails_and_the_tenant_is_told(acme, zone):
    old = make_domain(acme, "old.example", created_at=timezone.now() - timedelta(days=7, minutes=1))
    young = make_domain(acme, "young.example", created_at=timezone.now() - timedelta(days=6, hours=23))
    report = domains_sweep()
    assert report.expired == 1
    row = _row(old.pk)
    assert (row.status, row.failure_reason) == ("failed", "no verification record found within 7 days")
    assert _row(young.pk).status == "pending"
    (email,) = OutboundEmail.objects.all()
    assert email.template == "domain-failed" and "no verification record found within 7 days" in email.text
    assert WebhookMessage.objects.get().event_type == "domain.failed"
    assert domains_sweep().expired == 0  # told once


def test_a_verified_domain_that_loses_its_record_fails_after_3_daily_misses(acme, zone):
    from domains.errors import CheckUnavailable
    from domains.services import domain_verify

    d = make_domain(acme, "shop.example", status="verified", verified_at=timezone.now())
    name = "_broxiva-verification.shop.example"
    for expected in (1, 2):
        TenantDomain.objects.filter(pk=d.pk).update(next_check_at=timezone.now())
        assert domain_verify(domain_id=d.pk).status == "verified"
        row = _row(d.pk)
        assert row.consecutive_misses == expected
        assert row.next_check_at - row.last_checked_at == timedelta(days=1)
    zone.fail(name, "servfail")
    TenantDomain.objects.filter(pk=d.pk).update(next_check_at=timezone.now())
    with pytest.raises(CheckUnavailable):
        domain_verify(domain_id=d.pk)
    assert (_row(d.pk).status, _row(d.pk).consecutive_misses) == ("verified", 2)  # transient: not a miss
    zone.fail(name, None)
    outcome = domain_verify(domain_id=d.pk)
    row = _row(d.pk)
    assert (outcome.result, row.status, row.failure_reason) == ("failed", "failed", "verification record removed")
    assert WebhookMessage.objects.get().event_type == "domain.failed"
    assert OutboundEmail.objects.get().template == "domain-failed"


def test_a_miss_between_misses_is_forgotten_when_the_record_is_back(acme, zone):
    from domains.services import domain_verify

    d = make_domain(acme, "shop.example", status="verified", verified_at=timezone.now(), consecutive_misses=2,
                    next_check_at=timezone.now())
    zone.set("_broxiva-verification.shop.example", "TXT", [f"broxiva-verification={d.token}"])
    assert domain_verify(domain_id=d.pk).result == "verified"
    assert _row(d.pk).consecutive_misses == 0
    assert not WebhookMessage.objects.exists()  # no status change, no news


def test_bad_input_is_refused_and_nothing_stored(acme):
    from django.core.exceptions import ValidationError

    from broxiva.queues import EnqueueError, enqueue

    for kwargs in ({"domain": "https://shop.example", "method": "dns_txt"},
                   {"domain": "shop.example", "method": "smoke_signal"}):
        with pytest.raises(ValidationError):
            add_domain(tenant_id=acme.pk, **kwargs)
    with pytest.raises(ValidationError):
        add_domain(tenant_id=999999, domain="shop.example", method="dns_txt")
    add_domain(tenant_id=acme.pk, domain="shop.example", method="dns_txt")
    with pytest.raises(ValidationError, match="already registered"):
        add_domain(tenant_id=acme.pk, domain="SHOP.example.", method="meta_tag")
    assert TenantDomain.objects.count() == 1
    with pytest.raises(EnqueueError):
        enqueue(QUEUE, "domains.jobs.domain_verify_job", domain_id="x")
    with pytest.raises(TenantDomain.DoesNotExist):
        verify_now(424242)


def test_verify_now_pulls_a_retry_waiting_out_its_backoff_forward_and_leaves_a_running_check(acme):
    from datetime import UTC, datetime

    from rq.registry import ScheduledJobRegistry

    d = make_domain(acme, "shop.example")
    queue = get_queue(QUEUE)
    job = queue.enqueue_call("domains.jobs.domain_verify_job", kwargs={"domain_id": d.pk},
                             job_id=f"domain-verify-{d.pk}")
    queue.remove(job.id)
    queue.schedule_job(job, datetime.now(UTC) + timedelta(hours=1))  # as a retry in its 1 h backoff
    assert queue.job_ids == []
    assert verify_now(d.pk) == "moved"
    assert queue.job_ids == [job.id] and job.id not in ScheduledJobRegistry(queue=queue).get_job_ids()
    job.set_status("started")
    assert verify_now(d.pk) == "running"
    assert queue.job_ids == [job.id]  # not pushed twice


def test_a_tenant_with_an_unusable_contact_address_still_gets_its_domain_verified(acme, zone):
    from domains.services import domain_verify

    type(acme).objects.filter(pk=acme.pk).update(contact_email="not an address")
    d = make_domain(acme, "shop.example")
    zone.set("_broxiva-verification.shop.example", "TXT", [f"broxiva-verification={d.token}"])
    assert domain_verify(domain_id=d.pk).result == "verified"
    assert _row(d.pk).status == "verified"
    assert WebhookMessage.objects.get().event_type == "domain.verified" and not OutboundEmail.objects.exists()
