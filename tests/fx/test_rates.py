"""convert() and quote(): rounding, history, staleness, and the in-process table's invalidation."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from fx.errors import InvalidAmount, RateUnavailable, UnknownCurrency
from fx.models import ExchangeRate
from fx.services import cache, convert, quote, rates, rates_refresh
from fx.services.cache import CachedRate
from tests.fx import feeds
from tests.fx.conftest import OXR_APP_ID, OXR_PATH

pytestmark = pytest.mark.django_db


def snapshot(base: str, quote_currency: str, rate: str, as_of: datetime, *, provider: str = "ecb",
             status: str = ExchangeRate.Status.PUBLISHED) -> ExchangeRate:
    return ExchangeRate.objects.create(base_currency=base, quote_currency=quote_currency, rate=Decimal(rate),
                                       provider=provider, as_of=as_of, fetched_at=timezone.now(), status=status)


@pytest.fixture
def usd_rates(providers, settings):
    """Fresh OXR rates chosen so that amounts land exactly on a half: JPY 100, KWD 0.5, EUR 0.5 per USD."""
    settings.OPEN_EXCHANGE_RATES_APP_ID = OXR_APP_ID
    settings.FX_BASE_CURRENCIES = ["USD"]
    body = feeds.oxr_json({"JPY": "100", "KWD": "0.5", "EUR": "0.5"}, timestamp=int(time.time()) - 600)
    providers.expect_request(OXR_PATH).respond_with_data(body, content_type="application/json")
    rates_refresh()
    return providers


class RoundingTests:
    def test_it_rounds_half_up_to_each_currencys_minor_units(self, usd_rates):
        assert convert(Decimal("0.005"), "USD", "JPY") == Decimal("1")  # 0.5 JPY
        assert convert(Decimal("1.234"), "USD", "JPY") == Decimal("123")
        assert convert(Decimal("1.125"), "USD", "KWD") == Decimal("0.563")  # 0.5625
        assert convert(Decimal("0.05"), "USD", "EUR") == Decimal("0.03")  # 0.025
        assert str(convert(Decimal("1"), "EUR", "USD")) == "2.00"
        assert str(convert(Decimal("3"), "USD", "JPY")) == "300"
        assert str(convert(Decimal("0.001"), "KWD", "KWD")) == "0.001"

    def test_it_uses_the_configured_rounding(self, usd_rates, settings):
        settings.FX_ROUNDING = "ROUND_HALF_EVEN"
        assert convert(Decimal("0.005"), "USD", "JPY") == Decimal("0")
        assert convert(Decimal("1.125"), "USD", "KWD") == Decimal("0.562")
        assert convert(Decimal("0.05"), "USD", "EUR") == Decimal("0.02")

    def test_it_converts_through_a_base_and_accepts_plain_amounts(self, usd_rates):
        assert convert(Decimal("7"), "JPY", "KWD") == Decimal("0.035")  # 7 / 100 * 0.5
        assert convert(10, "usd", "jpy") == Decimal("1000")
        assert convert("2.50", "USD", "EUR") == Decimal("1.25")
        assert convert(0.1, "USD", "JPY") == Decimal("10")
        assert quote("JPY", "KWD").via == "cross via USD"

    @pytest.mark.parametrize("amount, error", [(True, TypeError), ("abc", ValueError), (Decimal("NaN"), ValueError),
                                               (None, TypeError), ("Infinity", ValueError)])
    def test_it_refuses_amounts_that_are_not_numbers(self, usd_rates, amount, error):
        with pytest.raises(error):
            convert(amount, "USD", "JPY")


    @pytest.mark.parametrize("amount", [Decimal("1e400"), "1e33", 10**18, Decimal("-1e18"), 1e300, "-9e9999999"])
    def test_it_refuses_out_of_range_amounts_naming_the_range(self, usd_rates, amount):
        with pytest.raises(InvalidAmount, match=r"is out of range; .* between -1e18 and 1e18") as info:
            convert(amount, "USD", "JPY")
        assert isinstance(info.value, ValueError)
        assert str(Decimal(str(amount))) in str(info.value)

    def test_it_converts_the_largest_amounts_in_range(self, usd_rates):
        assert convert(Decimal("999999999999999999.99"), "USD", "JPY") == Decimal("99999999999999999999")
        assert convert(-(10**18 - 1), "USD", "KWD") == Decimal("-499999999999999999.500")

    def test_it_refuses_an_amount_whose_result_has_no_room_for_its_minor_units(self):
        snapshot("EUR", "IRR", "1e16", timezone.now() - timedelta(hours=1))  # no real rate; the guard's limit
        with pytest.raises(InvalidAmount, match=r"amount 1E\+17 is out of range: in IRR it has more than 34 sig"):
            convert(Decimal("1e17"), "EUR", "IRR")
        assert str(convert(Decimal("1e15"), "EUR", "IRR")) == "1" + "0" * 31 + ".00"

    @pytest.mark.parametrize("amount, problem", [
        ("abc", "is not a number"), (Decimal("NaN"), "is not a finite"), ("-Infinity", "is not a finite"),
        (Decimal("sNaN"), "is not a finite"),
    ])
    def test_it_names_what_is_wrong_with_an_amount(self, usd_rates, amount, problem):
        with pytest.raises(InvalidAmount, match=f"{problem}.*between -1e18 and 1e18"):
            convert(amount, "USD", "JPY")


class HistoryTests:
    @pytest.fixture
    def week(self):
        for day, usd, gbp in ((15, "1.08", "0.85"), (16, "1.09", "0.86"), (17, "1.10", "0.87")):
            as_of = datetime(2024, 5, day, tzinfo=UTC)
            snapshot("EUR", "USD", usd, as_of)
            snapshot("EUR", "GBP", gbp, as_of)
        snapshot("EUR", "USD", "1.50", datetime(2024, 5, 16, 12, tzinfo=UTC), provider="openexchangerates",
                 status=ExchangeRate.Status.HELD)

    def test_it_converts_at_a_past_date(self, week):
        assert convert(Decimal("100"), "EUR", "USD", at=date(2024, 5, 16)) == Decimal("109.00")
        assert convert(Decimal("100"), "EUR", "USD", at=datetime(2024, 5, 16, 23, 0, tzinfo=UTC)) == Decimal("109.00")
        assert convert(Decimal("100"), "EUR", "USD", at=datetime(2024, 5, 17, tzinfo=UTC)) == Decimal("110.00")
        assert convert(Decimal("109"), "USD", "EUR", at=date(2024, 5, 16)) == Decimal("100.00")
        # USD→GBP through EUR on the 15th: 0.85 / 1.08.
        assert convert(Decimal("108"), "USD", "GBP", at=date(2024, 5, 15)) == Decimal("85.00")
        used = quote("EUR", "USD", at=date(2024, 5, 16))
        assert (used.rate, used.as_of, used.provider) == (Decimal("1.09"), datetime(2024, 5, 16, tzinfo=UTC), "ecb")

    def test_it_has_no_rate_before_the_first_snapshot_or_long_after_the_last(self, week):
        with pytest.raises(RateUnavailable, match="no rate for EUR/USD"):
            convert(Decimal("1"), "EUR", "USD", at=date(2024, 5, 14))
        with pytest.raises(RateUnavailable, match=r"EUR/USD is stale: 1[0-9]{2}\.\d h old") as info:
            convert(Decimal("1"), "EUR", "USD", at=date(2024, 5, 22))
        assert info.value.as_of == datetime(2024, 5, 17, tzinfo=UTC)


class AvailabilityTests:
    def test_it_raises_rate_unavailable_naming_the_pair(self):
        with pytest.raises(RateUnavailable, match="no rate for USD/JPY"):
            convert(Decimal("1"), "USD", "JPY")

    def test_it_refuses_a_stale_rate_with_its_age(self, monkeypatch):
        # An ordinary Wednesday: run on the Tuesday after Easter, an ECB rate of 100 h is still
        # the newest the ECB published (HolidayTests).
        set_clock(monkeypatch, 2026, 3, 25, 12)
        snapshot("EUR", "USD", "1.08", datetime(2026, 3, 25, 12, tzinfo=UTC) - timedelta(hours=100))
        with pytest.raises(RateUnavailable, match=r"EUR/USD is stale: 100\.0 h old"):
            convert(Decimal("1"), "EUR", "USD")

    def test_a_weekend_old_ecb_rate_is_not_stale(self):
        snapshot("EUR", "USD", "1.08", timezone.now() - timedelta(hours=90))
        assert convert(Decimal("1"), "EUR", "USD") == Decimal("1.08")

    def test_an_unknown_currency_is_a_value_error_and_rate_unavailable(self):
        with pytest.raises(UnknownCurrency) as info:
            convert(Decimal("1"), "USD", "XYZ")
        assert isinstance(info.value, ValueError) and isinstance(info.value, RateUnavailable)
        assert "XYZ" in str(info.value)

    def test_a_held_rate_is_never_served(self):
        snapshot("EUR", "USD", "1.50", timezone.now() - timedelta(hours=1), status=ExchangeRate.Status.HELD)
        with pytest.raises(RateUnavailable):
            convert(Decimal("1"), "EUR", "USD")

    def test_it_falls_back_to_postgres_when_the_cache_is_gone(self, usd_rates):
        from tests.workers import flush_test_redis

        flush_test_redis()
        from fx.services import reset_local_cache

        reset_local_cache()
        assert convert(Decimal("3"), "USD", "JPY") == Decimal("300")
        assert quote("USD", "JPY").provider == "openexchangerates"


class LocalTableTests:
    def test_it_reads_redis_at_most_once_per_interval(self, usd_rates, settings, monkeypatch):
        from fx.services import rates

        settings.FX_LOCAL_CACHE_SECONDS = 60
        convert(Decimal("1"), "USD", "JPY")
        seen = []
        original = rates.read_version
        monkeypatch.setattr(rates, "read_version", lambda: seen.append(1) or original())
        for _ in range(1000):
            convert(Decimal("1"), "USD", "JPY")
        assert seen == []

    def test_another_process_publishing_is_seen_after_the_interval(self, usd_rates, settings):
        settings.FX_LOCAL_CACHE_SECONDS = 0.2
        assert convert(Decimal("1"), "USD", "JPY") == Decimal("100")
        # What a refresh in another process leaves in Redis: a new rate and a new version.
        cache.publish({"USD": {"JPY": CachedRate(Decimal("120"), time.time(), "ecb")}})
        assert convert(Decimal("1"), "USD", "JPY") == Decimal("100")  # within the staleness bound
        time.sleep(0.25)
        assert convert(Decimal("1"), "USD", "JPY") == Decimal("120")

    def test_a_refresh_in_this_process_is_seen_at_once(self, usd_rates, settings, providers):
        settings.FX_LOCAL_CACHE_SECONDS = 3600
        assert convert(Decimal("1"), "USD", "JPY") == Decimal("100")
        providers.clear()
        body = feeds.oxr_json({"JPY": "105", "KWD": "0.5", "EUR": "0.5"}, timestamp=int(time.time()) - 60)
        providers.expect_request(OXR_PATH).respond_with_data(body, content_type="application/json")
        rates_refresh(force=True)
        assert convert(Decimal("1"), "USD", "JPY") == Decimal("105")


def ecb_day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def set_clock(monkeypatch, *parts: int) -> None:
    """Make the live path of convert()/quote() read this moment (UTC) as now."""
    moment = datetime(*parts, tzinfo=UTC).timestamp()
    monkeypatch.setattr(rates, "time", SimpleNamespace(time=lambda: moment))


class HolidayTests:
    """ECB rates across TARGET holidays: docs/fx.md's promise that a weekend plus holidays is not stale."""

    @pytest.fixture
    def maundy_thursday(self):
        snapshot("EUR", "USD", "1.08", ecb_day(2026, 4, 2))
        snapshot("EUR", "JPY", "170", ecb_day(2026, 4, 2))

    def test_thursdays_rate_serves_over_easter(self, maundy_thursday):
        used = quote("EUR", "USD", at=datetime(2026, 4, 6, 0, 30, tzinfo=UTC))  # 96.5 h
        assert (used.rate, used.as_of, used.provider) == (Decimal("1.08"), ecb_day(2026, 4, 2), "ecb")
        assert convert(Decimal("100"), "EUR", "USD", at=datetime(2026, 4, 7, 23, 59, tzinfo=UTC)) == Decimal("108.00")
        assert convert(Decimal("108"), "USD", "JPY", at=datetime(2026, 4, 6, 12, tzinfo=UTC)) == Decimal("17000")

    def test_a_rate_that_missed_tuesdays_publication_is_refused(self, maundy_thursday):
        refused = r"EUR/USD is stale: 144\.5 h old .* publication of 2026-04-07 is missing"
        with pytest.raises(RateUnavailable, match=refused):
            quote("EUR", "USD", at=datetime(2026, 4, 8, 0, 30, tzinfo=UTC))
        snapshot("EUR", "USD", "1.09", ecb_day(2026, 4, 7))
        assert quote("EUR", "USD", at=datetime(2026, 4, 8, 0, 30, tzinfo=UTC)).rate == Decimal("1.09")

    def test_christmas_eves_rate_serves_until_mondays_publication_is_missed(self):
        snapshot("EUR", "USD", "1.17", ecb_day(2026, 12, 24))  # a Thursday; 25 and 26 December are holidays
        assert convert(Decimal("100"), "EUR", "USD", at=datetime(2026, 12, 28, 10, tzinfo=UTC)) == Decimal("117.00")
        assert convert(Decimal("100"), "EUR", "USD", at=datetime(2026, 12, 28, 23, tzinfo=UTC)) == Decimal("117.00")
        with pytest.raises(RateUnavailable, match=r"120\.5 h old"):
            convert(Decimal("100"), "EUR", "USD", at=datetime(2026, 12, 29, 0, 30, tzinfo=UTC))

    def test_an_ordinary_weeks_rate_is_refused_after_the_hours_limit(self):
        snapshot("EUR", "USD", "1.08", ecb_day(2026, 3, 23))  # a Monday: Tuesday to Friday published
        assert quote("EUR", "USD", at=datetime(2026, 3, 26, 23, tzinfo=UTC)).rate == Decimal("1.08")
        with pytest.raises(RateUnavailable, match=r"96\.5 h old .*FX_MAX_AGE_HOURS=96$"):
            quote("EUR", "USD", at=datetime(2026, 3, 27, 0, 30, tzinfo=UTC))

    def test_the_calendar_is_the_ecbs_only(self):
        snapshot("USD", "JPY", "150", ecb_day(2026, 4, 2), provider="openexchangerates")
        with pytest.raises(RateUnavailable, match=r"96\.5 h old"):
            quote("USD", "JPY", at=datetime(2026, 4, 6, 0, 30, tzinfo=UTC))
        # A cross rate lasts as long as its shorter-lived leg.
        snapshot("USD", "EUR", "0.92", ecb_day(2026, 4, 2))
        with pytest.raises(RateUnavailable, match=r"EUR/JPY is stale"):
            quote("EUR", "JPY", at=datetime(2026, 4, 6, 0, 30, tzinfo=UTC))

    def test_the_live_table_serves_thursdays_rate_on_easter_monday(self, settings, monkeypatch):
        settings.FX_BASE_CURRENCIES = ["EUR"]
        cache.publish({"EUR": {"USD": CachedRate(Decimal("1.08"), ecb_day(2026, 4, 2).timestamp(), "ecb")}})
        set_clock(monkeypatch, 2026, 4, 6, 15)
        assert convert(Decimal("100"), "EUR", "USD") == Decimal("108.00")
        set_clock(monkeypatch, 2026, 4, 8, 1)
        with pytest.raises(RateUnavailable, match=r"145\.0 h old"):
            convert(Decimal("100"), "EUR", "USD")

    def test_a_table_loaded_from_postgres_serves_it_too(self, settings, monkeypatch, maundy_thursday):
        settings.FX_BASE_CURRENCIES = ["EUR"]
        set_clock(monkeypatch, 2026, 4, 7, 9)
        assert convert(Decimal("100"), "EUR", "JPY") == Decimal("17000")
        assert convert(Decimal("170"), "JPY", "USD") == Decimal("1.08")


class TransienceTests:
    """Whether a job converting prices retries (the worker reads ``transient``)."""

    def test_a_stale_rate_is_transient(self):
        snapshot("EUR", "USD", "1.08", timezone.now() - timedelta(days=10))
        with pytest.raises(RateUnavailable) as info:
            convert(Decimal("1"), "EUR", "USD")
        assert info.value.transient is True

    def test_a_pair_never_stored_or_an_unknown_code_is_permanent(self):
        with pytest.raises(RateUnavailable) as info:
            convert(Decimal("1"), "EUR", "USD")
        assert info.value.transient is False
        with pytest.raises(UnknownCurrency) as info:
            convert(Decimal("1"), "EUR", "XYZ")
        assert info.value.transient is False
