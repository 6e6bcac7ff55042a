"""The fx-refresh job: its payload, its outcomes, and real workers running it."""

from __future__ import annotations

import pytest
from rq.job import Job, JobStatus

from broxiva.queues import InvalidPayload, enqueue, get_queue
from broxiva.ratelimit import DeferJob
from fx.errors import RefreshFailed
from fx.jobs import FxRefreshJobData, rates_refresh_job
from fx.models import ExchangeRate
from tests.fx import feeds
from tests.fx.conftest import ECB_PATH, FIXER_KEY, FIXER_PATH, OXR_APP_ID, OXR_PATH, calls, serve_ecb
from tests.workers import running_worker, wait_for, worker_env


class PayloadTests:
    def test_it_normalises_codes_and_keeps_the_seed_defaults(self):
        data = FxRefreshJobData(base_currency=" usd", target_currencies=["eur", "JPY", "EUR"])
        assert data.model_dump() == {"base_currency": "USD", "target_currencies": ["EUR", "JPY"], "provider": None,
                                     "force_refresh": False}

    @pytest.mark.parametrize("fields, problem", [
        ({"base_currency": "XYZ"}, "base_currency"),
        ({"base_currency": "USD", "target_currencies": ["EUR", "BTC"]}, "target_currencies"),
        ({"base_currency": "USD", "target_currencies": []}, "target_currencies"),
        ({"base_currency": "USD", "provider": "yahoo"}, "provider"),
        ({"base_currency": "USD", "baseCurrency": "EUR"}, "baseCurrency"),
        ({}, "base_currency"),
    ])
    def test_it_refuses_a_bad_payload_before_enqueueing(self, fields, problem):
        with pytest.raises(InvalidPayload, match=problem):
            enqueue("fx-refresh", rates_refresh_job, **fields)
        assert get_queue("fx-refresh").count == 0


@pytest.mark.django_db
class JobOutcomeTests:
    def test_it_returns_a_small_json_result(self, providers):
        serve_ecb(providers)
        result = rates_refresh_job(base_currency="chf", force_refresh=True)
        assert result["status"] == "stored" and result["provider"] == "ecb"
        assert result["bases"] == ["CHF", "USD", "EUR", "GBP"]
        assert result["stored"]["CHF"] == 30
        assert rates_refresh_job(base_currency="CHF")["status"] == "cached"

    def test_it_defers_on_429_instead_of_failing(self, providers, settings):
        settings.OPEN_EXCHANGE_RATES_APP_ID = OXR_APP_ID
        providers.expect_request(OXR_PATH).respond_with_data(
            feeds.oxr_error(429, "access_restricted", "Access restricted for repeated over-use (status: 429)."),
            status=429, headers={"Retry-After": "30"}, content_type="application/json")
        with pytest.raises(DeferJob) as info:
            rates_refresh_job(base_currency="USD", provider="openexchangerates")
        assert info.value.seconds == 30

    def test_it_raises_a_permanent_failure_with_the_providers_message(self, providers, settings):
        settings.FIXER_API_KEY = FIXER_KEY
        providers.expect_request(FIXER_PATH).respond_with_data(feeds.FIXER_101, content_type="application/json")
        with pytest.raises(RefreshFailed, match="fixer error 101"):
            rates_refresh_job(base_currency="EUR")
        assert not ExchangeRate.objects.exists()


def _env(server, **extra: str) -> dict[str, str]:
    return worker_env(
        FX_ECB_URL=server.url_for(ECB_PATH), OPEN_EXCHANGE_RATES_URL=server.url_for("/oxr/api"),
        FIXER_URL=server.url_for("/fixer/api"), FX_PROVIDER_RETRY_DELAY="0", FX_HTTP_TIMEOUT="5", **extra,
    )


@pytest.mark.django_db(transaction=True)
class WorkerTests:
    def test_a_real_worker_runs_the_periodic_entry(self, providers):
        from broxiva.schedules import get_scheduler, register
        from fx.schedules import SCHEDULES

        serve_ecb(providers)
        (entry,) = [e for e in SCHEDULES if e.id == "fx-refresh-all"]
        assert (entry.queue, entry.cron, entry.func) == ("fx-refresh", "*/15 * * * *", "fx.jobs.rates_refresh_job")
        scheduler = get_scheduler()
        register([entry], scheduler=scheduler)
        # Make it due now and let the scheduler fire it once, as it would at the next quarter hour.
        scheduler.connection.zadd(scheduler.scheduled_jobs_key, {entry.job_id: 0})
        scheduler.enqueue_jobs()
        queue = get_queue("fx-refresh")
        (job_id,) = queue.job_ids
        with running_worker("fx-refresh", burst=True, env=_env(providers, FX_PROVIDERS="ecb")) as worker:
            wait_for(lambda: worker.poll() is not None, timeout=60, what="the burst worker to finish")
        job = Job.fetch(job_id, connection=queue.connection)
        assert job.get_status() == JobStatus.FINISHED
        assert job.return_value()["stored"] == {"USD": 30, "EUR": 30, "GBP": 30}
        assert ExchangeRate.objects.filter(provider="ecb").count() == 90
        assert calls(providers, ECB_PATH) == 1

    def test_a_real_worker_fails_permanent_errors_at_once_retries_transient_ones_and_defers_429(
        self, providers
    ):
        providers.expect_request(FIXER_PATH).respond_with_data(feeds.FIXER_101, content_type="application/json")
        serve_ecb(providers, feeds.HTML_502, status=502, content_type="text/html")
        providers.expect_request(OXR_PATH).respond_with_data(
            '{"message": "slow down"}', status=429, headers={"Retry-After": "300"}, content_type="application/json")
        queue = get_queue("fx-refresh")
        permanent = enqueue("fx-refresh", rates_refresh_job, base_currency="EUR", provider="fixer")
        transient = enqueue("fx-refresh", rates_refresh_job, base_currency="EUR", provider="ecb")
        limited = enqueue("fx-refresh", rates_refresh_job, base_currency="USD", provider="openexchangerates")
        env = _env(providers, FX_PROVIDER_RETRIES="0", FIXER_API_KEY=FIXER_KEY, OPEN_EXCHANGE_RATES_APP_ID=OXR_APP_ID)
        with running_worker("fx-refresh", burst=True, env=env) as worker:
            wait_for(lambda: worker.poll() is not None, timeout=60, what="the burst worker to finish")
        jobs = {name: Job.fetch(job_id, connection=queue.connection)
                for name, job_id in (("permanent", permanent), ("transient", transient), ("limited", limited))}
        # Fixer's 101: failed after one attempt, with the provider's own message.
        assert jobs["permanent"].get_status() == JobStatus.FAILED
        assert "101 missing_access_key" in jobs["permanent"].latest_result().exc_string
        assert calls(providers, FIXER_PATH) == 1
        # The 502: scheduled for its second attempt (3 attempts, 5 s base).
        assert jobs["transient"].get_status() == JobStatus.SCHEDULED
        assert jobs["transient"].retries_left == 1
        # The 429: deferred, no attempt spent.
        assert jobs["limited"].get_status() == JobStatus.SCHEDULED
        assert jobs["limited"].retries_left == 2
        assert jobs["limited"].meta.get("broxiva_deferrals") == 1
        assert not ExchangeRate.objects.exists()
