"""A job converting prices under a real worker: a stale rate is retried, a pair never stored is not."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from rq.job import JobStatus

from broxiva.queues import enqueue, get_queue
from fx.models import ExchangeRate
from tests.fx.convert_jobs import convert_price_job
from tests.workers import running_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUEUE = "product-sync"


def attempts(marker: str) -> int:
    return redis.Redis.from_url(settings.REDIS_URL).llen(f"test:attempts:{marker}")


def snapshot(rate: str, age: timedelta) -> None:
    now = timezone.now()
    ExchangeRate.objects.create(base_currency="EUR", quote_currency="USD", rate=Decimal(rate), provider="ecb",
                                as_of=now - age, fetched_at=now)


@pytest.fixture(autouse=True)
def quick_retries(settings):
    settings.QUEUE_OVERRIDES = {QUEUE: {"attempts": 3, "backoff_base": 2, "max_delay": 2}}


class ConvertJobTests:
    def test_a_stale_rate_is_retried_until_a_fresh_one_is_published(self):
        snapshot("1.05", timedelta(days=10))
        job_id = enqueue(QUEUE, convert_price_job, "stale", "100", "EUR", "USD")
        queue = get_queue(QUEUE)
        with running_worker(QUEUE):
            wait_for(lambda: job_id in queue.scheduled_job_registry.get_job_ids(), timeout=30,
                     what="the first attempt to fail and a retry to be scheduled")
            snapshot("1.08", timedelta(hours=1))  # the refresh catches up
            wait_for(lambda: queue.fetch_job(job_id).get_status() in (JobStatus.FINISHED, JobStatus.FAILED),
                     timeout=45, what="the job to end")
        job = queue.fetch_job(job_id)
        assert job.get_status() == JobStatus.FINISHED, job.latest_result().exc_string
        assert job.return_value() == "108.00"
        assert attempts("stale") == 2

    def test_a_pair_never_stored_fails_at_once(self):
        job_id = enqueue(QUEUE, convert_price_job, "never", "100", "EUR", "USD")
        queue = get_queue(QUEUE)
        with running_worker(QUEUE):
            wait_for(lambda: job_id in queue.failed_job_registry.get_job_ids(), timeout=30, what="the job to fail")
        assert attempts("never") == 1
        assert queue.scheduled_job_registry.get_job_ids() == []
        assert "no rate for EUR/USD" in queue.fetch_job(job_id).latest_result().exc_string
