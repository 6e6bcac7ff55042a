from __future__ import annotations

import pytest
from django.db import transaction
from rq import Queue
from rq.job import JobStatus

from broxiva import queues
from broxiva.policies import LIVE_STATUSES
from broxiva.queues import EnqueueError, InvalidPayload, UnknownQueue, enqueue, enqueue_many, policy
from tests.jobs.sample import GreetingJobData, greet_job, record

QUEUE_TABLE = {
    # name: (attempts, backoff base, max delay)
    "fx-refresh": (3, 5, 60),
    "translation": (3, 10, 300),
    "product-sync": (5, 30, 600),
    "sitemap-generation": (3, 60, 600),
    "domain-verification": (10, 60, 3600),
    "email": (3, 10, None),
    "notification": (3, 10, None),
}


def queue_keys() -> list[bytes]:
    return sorted(queues.get_queue("email").connection.keys("*"))


class PolicyTests:
    def test_it_matches_the_design_table(self):
        for name, (attempts, base, cap) in QUEUE_TABLE.items():
            p = policy(name)
            assert (p.attempts, p.backoff_base, p.max_delay) == (attempts, base, cap), name
            assert p.keep_completed == 100 and p.keep_failed == 500
        assert set(queues.POLICIES) == {*QUEUE_TABLE, "webhook-delivery", "maintenance"}

    def test_it_computes_capped_exponential_retry_delays(self):
        assert policy("domain-verification").retry_delays() == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
        assert policy("fx-refresh").retry_delays() == [5, 10]
        assert policy("product-sync").retry_delays() == [30, 60, 120, 240]
        assert policy("email").retry_delays() == [10, 20]

    def test_it_uses_the_defaults_for_what_the_table_leaves_out(self):
        assert policy("email").timeout == 60
        assert policy("notification").attempts == 3

    def test_it_orders_time_sensitive_queues_first(self):
        order = list(queues.PRIORITY_ORDER)
        assert order.index("email") < order.index("product-sync")
        assert order.index("domain-verification") < order.index("sitemap-generation")

    def test_it_serves_the_kernel_housekeeping_queue_before_every_other(self):
        assert queues.PRIORITY_ORDER[0] == "maintenance"
        assert policy("maintenance").attempts == 1  # a failed sweep is run again by the next minute's entry

    def test_its_live_statuses_are_rq_job_statuses(self):
        assert set(LIVE_STATUSES) == {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}

    def test_it_refuses_an_unknown_queue(self):
        with pytest.raises(UnknownQueue, match="unknown queue 'nope'"):
            policy("nope")


class EnqueueTests:
    def test_it_applies_the_queue_policy_to_the_job(self):
        job_id = enqueue("fx-refresh", record, "a")
        job = queues.get_queue("fx-refresh").fetch_job(job_id)
        assert job.func_name == "tests.jobs.sample.record"
        assert job.args == ("a",)
        assert job.timeout == 60
        assert job.retries_left == 2
        assert job.retry_intervals == [5, 10]
        assert job.failure_ttl > 0 and job.result_ttl > 0

    def test_it_puts_an_urgent_job_at_the_front(self):
        enqueue("email", record, "bulk")
        urgent = enqueue("email", record, "urgent", at_front=True)
        assert queues.get_queue("email").job_ids[0] == urgent

    def test_it_refuses_an_unknown_queue_and_stores_nothing(self):
        with pytest.raises(UnknownQueue):
            enqueue("fx_refresh", record, "a")
        assert queue_keys() == []

    @pytest.mark.django_db
    def test_it_refuses_unserialisable_arguments_and_stores_nothing(self, acme):
        with pytest.raises(EnqueueError, match="JSON-serialisable"):
            enqueue("email", record, acme)
        with pytest.raises(EnqueueError, match="JSON-serialisable"):
            enqueue("email", record, float("nan"))
        assert queue_keys() == []

    def test_it_refuses_a_function_that_cannot_be_imported(self):
        def local():
            pass

        with pytest.raises(EnqueueError, match="module-level"):
            enqueue("email", local)
        with pytest.raises(EnqueueError, match="cannot be imported"):
            enqueue("email", "tests.jobs.sample.missing")
        assert queue_keys() == []

    def test_it_refuses_an_invalid_payload_and_stores_nothing(self):
        with pytest.raises(InvalidPayload, match="tenant_id"):
            enqueue("email", greet_job, name="x")
        with pytest.raises(InvalidPayload, match="colour"):
            enqueue("email", greet_job, tenant_id=1, name="x", colour="red")
        with pytest.raises(InvalidPayload, match="tenant_id"):
            enqueue("email", greet_job, tenant_id="not a number", name="x")
        assert queue_keys() == []

    def test_it_stores_a_valid_payload_normalised(self):
        job_id = enqueue("email", greet_job, tenant_id="7", name="  Ada ")
        job = queues.get_queue("email").fetch_job(job_id)
        assert job.kwargs == {"tenant_id": 7, "name": "Ada", "shout": False}
        assert job.perform() == {"text": "hello Ada"}

    def test_it_accepts_a_payload_instance(self):
        job_id = enqueue("email", greet_job, GreetingJobData(tenant_id=1, name="Bo", shout=True))
        assert queues.get_queue("email").fetch_job(job_id).perform() == {"text": "HELLO BO"}

    def test_it_refuses_a_bad_job_id(self):
        for bad in ("has space", "a:b", "a.b", "x" * 129, ""):
            with pytest.raises(EnqueueError, match="job_id"):
                enqueue("email", record, "a", job_id=bad)

    @pytest.mark.django_db(transaction=True)
    def test_it_enqueues_nothing_when_the_transaction_rolls_back(self):
        class Rollback(Exception):
            pass

        with pytest.raises(Rollback), transaction.atomic():
            job_id = enqueue("email", record, "a")
            raise Rollback
        assert queues.get_queue("email").count == 0
        assert queues.get_queue("email").fetch_job(job_id) is None

    @pytest.mark.django_db(transaction=True)
    def test_it_enqueues_when_the_transaction_commits(self):
        with transaction.atomic():
            job_id = enqueue("email", record, "a")
            assert queues.get_queue("email").count == 0
        assert queues.get_queue("email").job_ids == [job_id]

    def test_it_fans_out_in_a_pipeline(self):
        ids = enqueue_many("email", greet_job, [{"tenant_id": i, "name": f"n{i}"} for i in range(1200)])
        q: Queue = queues.get_queue("email")
        assert len(ids) == 1200 and q.count == 1200
        assert q.fetch_job(ids[-1]).kwargs["tenant_id"] == 1199
        assert q.fetch_job(ids[0]).retries_left == 2

    @pytest.mark.django_db(transaction=True)
    def test_it_fans_out_with_the_job_ids_given(self):
        kwargs = [{"tenant_id": i, "name": f"n{i}"} for i in range(3)]
        assert enqueue_many("email", greet_job, kwargs, job_ids=["a-1", "a-2", "a-3"]) == ["a-1", "a-2", "a-3"]
        with transaction.atomic():  # through the outbox, pushed with the same ids
            assert enqueue_many("email", greet_job, kwargs, job_ids=["b-1", "b-2", "b-3"]) == ["b-1", "b-2", "b-3"]
        q: Queue = queues.get_queue("email")
        assert sorted(q.job_ids) == ["a-1", "a-2", "a-3", "b-1", "b-2", "b-3"]
        assert q.fetch_job("b-3").kwargs["tenant_id"] == 2
        with pytest.raises(EnqueueError, match="2 job ids for 3 jobs"):
            enqueue_many("email", greet_job, kwargs, job_ids=["c-1", "c-2"])
        with pytest.raises(EnqueueError, match="must be 1-128 characters"):
            enqueue_many("email", greet_job, kwargs, job_ids=["c-1", "c 2", "c-3"])
        assert q.count == 6

    def test_it_refuses_the_whole_batch_when_one_payload_is_bad(self):
        with pytest.raises(InvalidPayload):
            enqueue_many("email", greet_job, [{"tenant_id": 1, "name": "a"}, {"name": "b"}])
        assert queue_keys() == []
