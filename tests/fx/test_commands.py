"""manage.py fx_refresh and fx_convert, as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from fx.models import ExchangeRate
from tests.fx import feeds
from tests.fx.conftest import FIXER_KEY, FIXER_PATH, serve_ecb
from tests.workers import ROOT, worker_env

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


class FxRefreshCommandTests:
    def test_it_prints_what_it_stored(self, providers):
        serve_ecb(providers)
        out = run("fx_refresh")
        assert "Stored 90 new rate snapshot(s) from ecb as of 2024-05-17 00:00:00 UTC (USD 30, EUR 30, GBP 30)" in out
        assert "1 EUR = AUD 1.6258" in out
        assert "nothing fetched" in run("fx_refresh")
        assert "Stored 0 new rate snapshot(s)" in run("fx_refresh", "--force")  # same feed: nothing new

    def test_it_exits_non_zero_with_the_providers_own_error(self, providers, settings):
        settings.FIXER_API_KEY = FIXER_KEY
        providers.expect_request(FIXER_PATH).respond_with_data(feeds.FIXER_101, content_type="application/json")
        with pytest.raises(CommandError) as info:
            run("fx_refresh", "--provider", "fixer", "--force")
        assert "101 missing_access_key" in str(info.value)
        assert FIXER_KEY not in str(info.value)
        assert not ExchangeRate.objects.exists()

    def test_it_exits_non_zero_when_every_provider_failed_transiently(self, providers):
        serve_ecb(providers, feeds.HTML_502, status=502, content_type="text/html")
        with pytest.raises(CommandError, match="HTTP 502"):
            run("fx_refresh")

    def test_it_reports_held_back_jumps(self, providers):
        serve_ecb(providers, feeds.ecb_xml(day="2024-05-16"))
        run("fx_refresh")
        providers.clear()
        serve_ecb(providers, feeds.ecb_xml(day="2024-05-17", rates=dict(feeds.ECB_RATES, TRY="49.0091")))
        out = run("fx_refresh", "--force")
        assert "Held back (moved 40.00%, not served until confirmed): EUR/TRY 35.0065 -> 49.0091" in out


class FxConvertCommandTests:
    def test_it_prints_the_result_and_the_rate_used(self, providers):
        serve_ecb(providers, feeds.ecb_xml(day=date.today()))
        run("fx_refresh")
        out = run("fx_convert", "100", "EUR", "JPY")
        assert "100 EUR = 16920 JPY" in out
        assert f"rate: 1 EUR = 169.2 JPY (ecb, as of {date.today():%Y-%m-%d} 00:00:00 UTC, direct)" in out
        assert "100 USD = 78.73 GBP" in run("fx_convert", "100", "usd", "gbp")
        # Through the ECB's own pivot, not through USD's already-derived rates.
        assert "100 CHF = 17146 JPY" in run("fx_convert", "100", "CHF", "JPY")
        assert "cross via EUR" in run("fx_convert", "100", "CHF", "JPY")

    def test_it_converts_at_a_past_date(self):
        for day, rate in ((16, "1.09"), (17, "1.10")):
            ExchangeRate.objects.create(base_currency="EUR", quote_currency="USD", rate=Decimal(rate), provider="ecb",
                                        as_of=datetime(2024, 5, day, tzinfo=UTC), fetched_at=timezone.now())
        out = run("fx_convert", "10", "EUR", "USD", "--at", "2024-05-16")
        assert "10 EUR = 10.90 USD" in out and "as of 2024-05-16" in out
        assert "10 EUR = 11.00 USD" in run("fx_convert", "10", "EUR", "USD", "--at", "2024-05-17T08:00:00Z")

    @pytest.mark.parametrize("args, message", [
        (("5", "EUR", "USD"), "no rate for EUR/USD"),
        (("5", "EUR", "ABC"), "'ABC' is not an ISO 4217 currency code"),
        (("five", "EUR", "USD"), "not a number"),
        (("5", "EUR", "USD", "--at", "yesterday"), "is not a date"),
    ])
    def test_it_exits_non_zero_with_a_clear_message(self, args, message):
        with pytest.raises(CommandError, match=message):
            run("fx_convert", *args)

    @pytest.mark.parametrize("args, message", [
        (("1e400", "USD", "EUR"), r"amount 1E\+400 is out of range"),
        (("1e33", "USD", "JPY"), r"amount 1E\+33 is out of range"),
        (("-1000000000000000000", "EUR", "USD"), "amount -1000000000000000000 is out of range"),
        (("NaN", "EUR", "USD"), "amount NaN is not a finite number"),
        (("inf", "EUR", "USD"), "amount Infinity is not a finite number"),
        (("abc", "EUR", "USD"), "amount 'abc' is not a number"),
    ])
    def test_it_refuses_an_amount_it_cannot_convert_naming_the_range(self, providers, args, message):
        serve_ecb(providers, feeds.ecb_xml(day=date.today()))
        run("fx_refresh")
        with pytest.raises(CommandError, match=f"{message}; amounts must be finite numbers strictly between -1e18 and"):
            run("fx_convert", *args)
        assert "999999999999999999 USD = " in run("fx_convert", "999999999999999999", "USD", "JPY")

    def test_an_operator_sees_one_line_and_a_non_zero_exit(self):
        done = subprocess.run([sys.executable, str(ROOT / "manage.py"), "fx_convert", "1e400", "USD", "EUR"],
                              cwd=ROOT, env=worker_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            "CommandError: amount 1E+400 is out of range; amounts must be finite numbers strictly between -1e18 "
            "and 1e18"
        ]
        assert done.stdout == ""
