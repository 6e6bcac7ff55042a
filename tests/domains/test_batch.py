"""DOMAIN_CHECK_BATCH: a worker's job takes sibling jobs still waiting and checks them at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry

from broxiva.queues import get_queue
from domains.models import TenantDomain
from domains.services import domains_sweep
from domains.services.batch import take_waiting
from tests.domains.conftest import make_domain
from tests.workers import running_worker, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)
QUEUE = "domain-verification"


@pytest.mark.slow
def test_a_batch_checks_every_domain_once_with_fewer_jobs_and_retries_a_transient_sibling_later(acme, zone):
    now = timezone.now()
    domains = [make_domain(acme, f"d{i}.example", next_check_at=now - timedelta(minutes=10 - i)) for i in range(9)]
    for d in domains[:6]:
        zone.set(f"_broxiva-verification.{d.domain}", "TXT", [f"broxiva-verification={d.token}"])
    zone.fail(f"_broxiva-verification.{domains[8].domain}", "servfail")
    assert domains_sweep().enqueued == 9
    env = worker_env(DNS_NAMESERVERS=zone.address, DNS_TIMEOUT="1", DNS_LIFETIME="3", DOMAIN_CHECK_BATCH="4")
    with running_worker(QUEUE, burst=True, env=env) as worker:
        wait_for(lambda: worker.poll() is not None, timeout=60, what="the burst worker to finish")
    rows = {r.pk: r for r in TenantDomain.objects.all()}
    assert [rows[d.pk].status for d in domains[:6]] == ["verified"] * 6
    assert [(rows[d.pk].status, rows[d.pk].checks) for d in domains[6:8]] == [("pending", 1)] * 2
    assert (rows[domains[8].pk].checks, rows[domains[8].pk].last_checked_at) == (0, None)  # transient: no check
    queue = get_queue(QUEUE)
    finished = FinishedJobRegistry(queue=queue).get_job_ids()
    assert 2 <= len(finished) <= 3  # 9 checks by batches of 4: two or three jobs ran
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [f"domain-verify-{domains[8].pk}"]  # retried later
    assert queue.job_ids == []
    assert domains_sweep().enqueued == 0  # nothing lost, nothing due twice: d8 waits for its retry


def test_taking_waiting_jobs_takes_each_once(acme):
    domains = [make_domain(acme, f"d{i}.example") for i in range(5)]
    domains_sweep()
    first = take_waiting(3, exclude=domains[0].pk)
    second = take_waiting(3, exclude=domains[0].pk)
    assert first == [d.pk for d in domains[1:4]] and second == [domains[4].pk]
    assert get_queue(QUEUE).job_ids == [f"domain-verify-{domains[0].pk}"]
    assert domains_sweep().enqueued == 4  # their hashes are gone: still due, so the sweep enqueues them again
