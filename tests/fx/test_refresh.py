"""rates_refresh against a local server speaking the providers' formats, with real Postgres and Redis."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal

import pytest

from fx.errors import RefreshDeferred, RefreshFailed
from fx.models import ExchangeRate
from fx.services import convert, rates_refresh
from fx.services.cache import read_rates
from tests.fx import feeds
from tests.fx.conftest import ECB_PATH, FIXER_KEY, FIXER_PATH, OXR_APP_ID, OXR_PATH, calls, serve_ecb
from tests.workers import wait_for

pytestmark = pytest.mark.django_db


def rate(base: str, quote: str, **filters) -> Decimal:
    return ExchangeRate.objects.filter(base_currency=base, quote_currency=quote, **filters).latest("as_of").rate


def exact(numerator: str, denominator: str) -> Decimal:
    return Context(prec=60).divide(Decimal(numerator), Decimal(denominator))


class ProviderFormatTests:
    def test_it_stores_every_base_from_one_ecb_call(self, providers):
        serve_ecb(providers)
        result = rates_refresh()
        assert calls(providers, ECB_PATH) == 1
        assert result.provider == "ecb"
        # The feed is Friday's: as_of is its date, whatever day we fetched it on.
        assert result.as_of == datetime(2024, 5, 17, tzinfo=UTC)
        assert result.stored == {"USD": 30, "EUR": 30, "GBP": 30}
        assert rate("EUR", "USD") == Decimal("1.0866")
        assert rate("EUR", "JPY") == Decimal("169.20")
        assert set(ExchangeRate.objects.values_list("provider", flat=True)) == {"ecb"}

    def test_it_computes_cross_rates_to_twelve_significant_digits(self, providers):
        serve_ecb(providers)
        rates_refresh()
        usd_gbp = rate("USD", "GBP")
        want = exact("0.85550", "1.0866")
        assert abs(usd_gbp - want) / want < Decimal("1e-12")
        assert usd_gbp == want.quantize(Decimal("1e-20"))  # 20 places
        want_eur = exact("1", "1.0866")
        assert abs(rate("USD", "EUR") - want_eur) / want_eur < Decimal("1e-12")
        want_jpy = exact("169.20", "0.85550")
        assert abs(rate("GBP", "JPY") - want_jpy) / want_jpy < Decimal("1e-12")

    def test_it_parses_open_exchange_rates(self, providers, settings):
        settings.OPEN_EXCHANGE_RATES_APP_ID = OXR_APP_ID
        providers.expect_request(OXR_PATH, query_string={"app_id": OXR_APP_ID}).respond_with_data(
            feeds.oxr_json(), content_type="application/json; charset=utf-8")
        result = rates_refresh()
        assert result.provider == "openexchangerates"
        assert result.as_of == datetime.fromtimestamp(feeds.OXR_TIMESTAMP, tz=UTC)
        assert rate("USD", "KWD", provider="openexchangerates") == Decimal("0.30712")
        want = exact("0.787254", "0.920245")
        assert abs(rate("EUR", "GBP") - want) / want < Decimal("1e-12")
        # BTC and CNH are not ISO 4217: rejected, not stored.
        assert set(result.rejected) == {"BTC", "CNH"}
        assert not ExchangeRate.objects.filter(quote_currency__in=["BTC", "CNH"]).exists()
        assert calls(providers, ECB_PATH) == 0

    def test_it_parses_fixer(self, providers, settings):
        settings.FIXER_API_KEY = FIXER_KEY
        providers.expect_request(FIXER_PATH, query_string={"access_key": FIXER_KEY}).respond_with_data(
            feeds.fixer_json(), content_type="application/json")
        result = rates_refresh()
        assert result.provider == "fixer"
        assert rate("EUR", "KWD") == Decimal("0.333779")
        assert ExchangeRate.objects.filter(provider="fixer").count() == sum(result.stored.values())


class PermanentErrorTests:
    def test_it_treats_fixer_success_false_with_http_200_as_permanent(self, providers, settings):
        settings.FIXER_API_KEY = FIXER_KEY
        providers.expect_request(FIXER_PATH).respond_with_data(feeds.FIXER_101, content_type="application/json")
        serve_ecb(providers)
        with pytest.raises(RefreshFailed) as info:
            rates_refresh()
        assert info.value.transient is False
        assert "101" in str(info.value) and "missing_access_key" in str(info.value)
        assert FIXER_KEY not in str(info.value)
        assert calls(providers, FIXER_PATH) == 1  # not retried
        assert calls(providers, ECB_PATH) == 0  # a bad key is not hidden behind the next provider
        assert not ExchangeRate.objects.exists()

    def test_it_treats_oxr_invalid_app_id_as_permanent(self, providers, settings):
        settings.OPEN_EXCHANGE_RATES_APP_ID = OXR_APP_ID
        providers.expect_request(OXR_PATH).respond_with_data(feeds.OXR_401, status=401,
                                                            content_type="application/json")
        serve_ecb(providers)
        with pytest.raises(RefreshFailed) as info:
            rates_refresh()
        assert info.value.transient is False
        assert "invalid_app_id" in str(info.value)
        assert OXR_APP_ID not in str(info.value)
        assert calls(providers, OXR_PATH) == 1
        assert not ExchangeRate.objects.exists()

    def test_it_refuses_an_explicit_provider_without_its_key(self, providers):
        with pytest.raises(RefreshFailed, match="FIXER_API_KEY is not set"):
            rates_refresh(provider="fixer")
        assert not providers.log


class TransientErrorTests:
    def test_it_retries_an_html_502_then_falls_through_to_the_next_provider(self, providers, settings):
        settings.OPEN_EXCHANGE_RATES_APP_ID = OXR_APP_ID
        providers.expect_request(OXR_PATH).respond_with_data(feeds.HTML_502, status=502, content_type="text/html")
        serve_ecb(providers)
        result = rates_refresh()
        assert calls(providers, OXR_PATH) == 2  # one retry
        assert result.provider == "ecb"
        assert set(ExchangeRate.objects.values_list("provider", flat=True)) == {"ecb"}
        assert "502" in result.skipped[0] and "Bad Gateway" in result.skipped[0]

    def test_it_retries_a_timeout_then_falls_through(self, providers, settings):
        settings.OPEN_EXCHANGE_RATES_APP_ID = OXR_APP_ID
        settings.FX_HTTP_TIMEOUT = 0.3

        seen = []
        release = threading.Event()

        def slow(request):
            seen.append(request.args["app_id"])
            release.wait(5)  # hangs past the client's timeout
            from werkzeug import Response

            return Response(feeds.oxr_json(), content_type="application/json")

        providers.expect_request(OXR_PATH).respond_with_handler(slow)
        serve_ecb(providers)
        result = rates_refresh()
        release.set()
        assert len(seen) == 2
        assert result.provider == "ecb"
        # Let the hung handlers finish, so their requests are logged in this test, not the next.
        wait_for(lambda: calls(providers, OXR_PATH) == 2, timeout=10, what="the hung handlers to return")
        assert "timed out" in result.skipped[0] and OXR_APP_ID not in result.skipped[0]

    @pytest.mark.parametrize("body", [feeds.truncated(feeds.ecb_xml()), feeds.HTML_502, feeds.BILLION_LAUGHS])
    def test_it_fails_transiently_when_the_last_provider_sends_garbage(self, providers, body):
        serve_ecb(providers, body)
        with pytest.raises(RefreshFailed) as info:
            rates_refresh()
        assert info.value.transient is True
        assert calls(providers, ECB_PATH) == 2
        assert not ExchangeRate.objects.exists()

    def test_it_treats_truncated_json_as_transient(self, providers, settings):
        settings.FIXER_API_KEY = FIXER_KEY
        settings.FX_PROVIDERS = ["fixer"]
        providers.expect_request(FIXER_PATH).respond_with_data(feeds.truncated(feeds.fixer_json()),
                                                              content_type="application/json")
        with pytest.raises(RefreshFailed, match="truncated JSON") as info:
            rates_refresh()
        assert info.value.transient is True

    def test_it_defers_on_429_and_honours_retry_after(self, providers, settings):
        settings.FIXER_API_KEY = FIXER_KEY
        settings.FX_PROVIDERS = ["fixer"]
        providers.expect_request(FIXER_PATH).respond_with_data(
            '{"message": "Too many requests"}', status=429, headers={"Retry-After": "120"},
            content_type="application/json")
        with pytest.raises(RefreshDeferred) as info:
            rates_refresh()
        assert 119 <= info.value.retry_after <= 120
        # Until Retry-After has passed a scheduled refresh does not call the provider again.
        with pytest.raises(RefreshDeferred, match="cooling down"):
            rates_refresh()
        assert calls(providers, FIXER_PATH) == 1
        # An operator's forced refresh does.
        with pytest.raises(RefreshDeferred, match="429"):
            rates_refresh(force=True)
        assert calls(providers, FIXER_PATH) == 2

    def test_it_falls_through_when_the_monthly_budget_is_paced(self, providers, settings):
        settings.OPEN_EXCHANGE_RATES_APP_ID = OXR_APP_ID
        settings.OPEN_EXCHANGE_RATES_MONTHLY_BUDGET = 2
        providers.expect_request(OXR_PATH).respond_with_data(feeds.oxr_json(), content_type="application/json")
        serve_ecb(providers)
        assert rates_refresh().provider == "openexchangerates"
        assert rates_refresh(force=True).provider == "ecb"
        assert calls(providers, OXR_PATH) == 1
        with pytest.raises(RefreshDeferred, match="budget"):
            rates_refresh(force=True, provider="openexchangerates")


class GuardTests:
    def test_it_rejects_unknown_codes_and_nonsense_rates_but_keeps_the_rest(self, providers):
        rates = {"USD": "1.0866", "GBP": "0.8555", "XYZ": "1.5", "JPY": "abc", "CHF": "0", "SEK": "-11.6",
                 "NOK": "NaN", "usd": "1.1"}
        serve_ecb(providers, feeds.ecb_xml(rates=rates))
        result = rates_refresh()
        assert set(result.rejected) == {"XYZ", "JPY", "CHF", "SEK", "NOK", "usd"}
        assert result.rejected["CHF"] == "zero or negative rate"
        assert result.rejected["JPY"] == "non-numeric rate"
        assert set(ExchangeRate.objects.filter(base_currency="EUR").values_list("quote_currency", flat=True)) == {
            "USD", "GBP"}

    def test_it_rejects_json_strings_booleans_and_nulls_as_rates(self, providers, settings):
        settings.OPEN_EXCHANGE_RATES_APP_ID = OXR_APP_ID
        body = feeds.oxr_json({"EUR": "0.92", "GBP": "0.79", "JPY": '"155.6"', "CHF": "true", "CAD": "null"})
        providers.expect_request(OXR_PATH).respond_with_data(body, content_type="application/json")
        result = rates_refresh()
        assert set(result.rejected) == {"JPY", "CHF", "CAD"}

    def test_a_partial_response_keeps_the_omitted_rates(self, providers):
        today = date.today()
        yesterday = today - timedelta(days=1)
        serve_ecb(providers, feeds.ecb_xml(day=yesterday))
        rates_refresh()
        before = convert(Decimal("100"), "EUR", "JPY")
        providers.clear()
        partial = {k: v for k, v in feeds.ECB_RATES.items() if k not in ("JPY", "CHF")}
        partial["USD"] = "1.0870"
        serve_ecb(providers, feeds.ecb_xml(day=today, rates=partial))
        result = rates_refresh(force=True)
        assert result.stored["EUR"] == len(partial)
        latest_jpy = ExchangeRate.objects.filter(base_currency="EUR", quote_currency="JPY").latest("as_of")
        assert (latest_jpy.as_of.date(), latest_jpy.rate) == (yesterday, Decimal("169.20"))
        cached = read_rates(["EUR"])["EUR"]
        assert cached["JPY"].rate == Decimal("169.20") and cached["USD"].rate == Decimal("1.0870")
        assert convert(Decimal("100"), "EUR", "JPY") == before == Decimal("16920")
        assert convert(Decimal("100"), "EUR", "USD") == Decimal("108.70")
        redis_flushed_fallback = ExchangeRate.objects.filter(quote_currency="CHF").count()
        assert redis_flushed_fallback == 3  # yesterday's CHF rows, one per base, untouched

    def test_it_round_trips_tiny_and_huge_rates_exactly(self, providers, settings):
        settings.OPEN_EXCHANGE_RATES_APP_ID = OXR_APP_ID
        settings.FX_BASE_CURRENCIES = ["USD"]
        body = feeds.oxr_json({"XAU": "0.00000001", "IRR": "150000", "EUR": "0.92"},
                              timestamp=int(time.time()) - 60)
        providers.expect_request(OXR_PATH).respond_with_data(body, content_type="application/json")
        rates_refresh()
        assert rate("USD", "XAU") == Decimal("0.00000001")
        assert rate("USD", "IRR") == Decimal("150000")
        assert read_rates(["USD"])["USD"]["XAU"].rate == Decimal("0.00000001")
        assert convert(Decimal("123456789"), "USD", "XAU") == Decimal("1.234568")  # XAU: no minor unit, 6 places
        assert convert(Decimal("1"), "USD", "IRR") == Decimal("150000")

    def test_a_rate_too_large_for_one_base_is_rejected_there_and_the_rest_stored(self, providers):
        # 9.9e17 IRR per EUR fits the column; per GBP (÷ 0.8555) it would not: only that cross is refused.
        serve_ecb(providers, feeds.ecb_xml(rates=dict(feeds.ECB_RATES, IRR="990000000000000000")))
        result = rates_refresh()
        assert result.stored == {"USD": 31, "EUR": 31, "GBP": 30}
        assert rate("EUR", "IRR") == Decimal("990000000000000000")
        assert result.rejected == {"GBP/IRR": "cross rate out of range"}
        assert not ExchangeRate.objects.filter(base_currency="GBP", quote_currency="IRR").exists()

    def test_a_response_dated_in_the_future_is_refused_so_it_cannot_shadow_later_rates(self, providers, settings):
        settings.OPEN_EXCHANGE_RATES_APP_ID = OXR_APP_ID
        settings.FX_PROVIDERS = ["openexchangerates"]
        settings.FX_BASE_CURRENCIES = ["USD"]
        now = int(time.time())
        providers.expect_request(OXR_PATH).respond_with_data(
            feeds.oxr_json({"EUR": "0.92", "JPY": "155"}, timestamp=now + 30 * 86400), content_type="application/json")
        with pytest.raises(RefreshFailed, match="in the future") as info:
            rates_refresh()
        assert info.value.transient is True
        assert not ExchangeRate.objects.exists()
        providers.clear()
        providers.expect_request(OXR_PATH).respond_with_data(
            feeds.oxr_json({"EUR": "0.92", "JPY": "156"}, timestamp=now - 60), content_type="application/json")
        rates_refresh(force=True)
        assert convert(Decimal("1"), "USD", "JPY") == Decimal("156")

    def test_it_holds_back_a_40_percent_jump_and_alerts(self, providers):
        from broxiva.models import Alert

        today = date.today().isoformat()
        serve_ecb(providers, feeds.ecb_xml(day="2024-05-16"))
        rates_refresh()
        jumped = dict(feeds.ECB_RATES, TRY="49.0091")  # +40 %
        providers.clear()
        serve_ecb(providers, feeds.ecb_xml(day=today, rates=jumped))
        result = rates_refresh(force=True)
        assert [h.pair for h in result.held] == ["EUR/TRY", "GBP/TRY", "USD/TRY"]
        held = ExchangeRate.objects.get(base_currency="EUR", quote_currency="TRY", as_of__date=date.today())
        assert held.status == ExchangeRate.Status.HELD and held.rate == Decimal("49.0091")
        # Not published: the cache keeps the previous rate.
        assert read_rates(["EUR"])["EUR"]["TRY"].rate == Decimal("35.0065")
        assert read_rates(["EUR"])["EUR"]["USD"].as_of == datetime.fromisoformat(today + "T00:00:00+00:00").timestamp()
        alert = Alert.objects.get(source="fx.refresh")
        assert "EUR/TRY" in alert.body and "held back" in alert.subject

    def test_a_second_fetch_that_agrees_publishes_the_jump(self, providers):
        serve_ecb(providers, feeds.ecb_xml(day="2024-05-16"))
        rates_refresh()
        providers.clear()
        serve_ecb(providers, feeds.ecb_xml(day="2024-05-17", rates=dict(feeds.ECB_RATES, TRY="49.0091")))
        rates_refresh(force=True)
        providers.clear()
        serve_ecb(providers, feeds.ecb_xml(day="2024-05-20", rates=dict(feeds.ECB_RATES, TRY="49.2")))
        result = rates_refresh(force=True)
        assert result.held == []
        assert "EUR/TRY" in result.confirmed
        assert not ExchangeRate.objects.filter(status=ExchangeRate.Status.HELD).exists()
        assert read_rates(["EUR"])["EUR"]["TRY"].rate == Decimal("49.2")

    def test_refetching_the_same_snapshot_neither_confirms_nor_re_alerts_a_held_jump(self, providers):
        from broxiva.models import Alert

        serve_ecb(providers, feeds.ecb_xml(day="2024-05-16"))
        rates_refresh()
        providers.clear()
        serve_ecb(providers, feeds.ecb_xml(day="2024-05-17", rates=dict(feeds.ECB_RATES, TRY="49.0091")))
        rates_refresh(force=True)
        # The next hourly refresh gets the very same ECB document: no second opinion.
        result = rates_refresh(force=True)
        assert result.confirmed == []
        assert [h.pair for h in result.held] == ["EUR/TRY", "GBP/TRY", "USD/TRY"]
        assert ExchangeRate.objects.filter(status=ExchangeRate.Status.HELD).count() == 3
        assert read_rates(["EUR"])["EUR"]["TRY"].rate == Decimal("35.0065")
        assert Alert.objects.filter(source="fx.refresh").count() == 1

    def test_staff_confirmation_publishes_a_held_rate(self, providers):
        from fx.services import rates_confirm

        serve_ecb(providers, feeds.ecb_xml(day="2024-05-16"))
        rates_refresh()
        providers.clear()
        serve_ecb(providers, feeds.ecb_xml(day="2024-05-17", rates=dict(feeds.ECB_RATES, TRY="49.0091")))
        rates_refresh(force=True)
        ids = list(ExchangeRate.objects.filter(status=ExchangeRate.Status.HELD).values_list("id", flat=True))
        assert rates_confirm(ids=ids) == 3
        assert read_rates(["EUR"])["EUR"]["TRY"].rate == Decimal("49.0091")


class CacheAndLockTests:
    def test_a_fresh_cache_makes_no_provider_call_unless_forced(self, providers):
        serve_ecb(providers)
        assert rates_refresh().status == "stored"
        assert rates_refresh().status == "cached"
        assert rates_refresh(base="GBP", targets=["USD", "JPY"]).status == "cached"
        assert calls(providers, ECB_PATH) == 1
        assert rates_refresh(force=True).status == "stored"
        assert calls(providers, ECB_PATH) == 2

    def test_a_new_base_or_missing_target_is_not_served_from_the_cache(self, providers):
        serve_ecb(providers)
        rates_refresh()
        assert rates_refresh(base="CHF").status == "stored"
        assert calls(providers, ECB_PATH) == 2
        assert rates_refresh(targets=["JPY", "KWD"]).status == "stored"  # the ECB has no KWD: not cached
        assert calls(providers, ECB_PATH) == 3


    def test_a_refresh_limited_to_targets_does_not_mark_the_bases_fresh(self, providers):
        serve_ecb(providers)
        result = rates_refresh(targets=["JPY"])
        assert result.stored == {"USD": 1, "EUR": 1, "GBP": 1}  # JPY per base
        assert rates_refresh().status == "stored"
        assert calls(providers, ECB_PATH) == 2


@pytest.mark.django_db(transaction=True)
class ConcurrencyTests:
    def test_two_concurrent_refreshes_make_one_provider_call(self, providers):
        from django.db import connection

        def slow_feed(request):
            time.sleep(0.5)
            from werkzeug import Response

            return Response(feeds.ecb_xml(), content_type="text/xml")

        providers.expect_request(ECB_PATH).respond_with_handler(slow_feed)
        results, errors = [], []

        def run():
            try:
                results.append(rates_refresh(force=True).status)
            except Exception as exc:  # surfaced by the assertion below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert sorted(results) == ["cached", "stored"]
        assert calls(providers, ECB_PATH) == 1
        assert ExchangeRate.objects.count() == 90
