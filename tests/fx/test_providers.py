"""Each provider module against the local server: its success format and its error codes, typed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from fx.errors import ProviderError, ProviderRateLimited
from fx.providers import ecb, fixer, openexchangerates
from fx.services import rates_refresh
from tests.broxiva.http_servers import RawServer, drip, response
from tests.fx import feeds
from tests.fx.conftest import ECB_PATH, FIXER_KEY, FIXER_PATH, OXR_APP_ID, OXR_PATH, calls, serve_ecb


@pytest.fixture
def keyed(providers, settings):
    settings.OPEN_EXCHANGE_RATES_APP_ID = OXR_APP_ID
    settings.FIXER_API_KEY = FIXER_KEY
    return providers


def oxr(server, body: str, status: int = 200, **headers: str) -> None:
    server.expect_request(OXR_PATH).respond_with_data(body, status=status, headers=headers,
                                                      content_type="application/json")


def fixer_serves(server, body: str, status: int = 200) -> None:
    server.expect_request(FIXER_PATH).respond_with_data(body, status=status, content_type="application/json")


class EcbTests:
    def test_it_reads_the_feed_date_and_decimal_rates(self, providers):
        providers.expect_request(ECB_PATH).respond_with_data(feeds.ecb_xml("2024-05-18"), content_type="text/xml")
        result = ecb.fetch()
        assert (result.base, result.as_of) == ("EUR", datetime(2024, 5, 18, tzinfo=UTC))
        assert result.rates["IDR"] == Decimal("17345.59") and len(result.rates) == 30

    def test_it_takes_the_newest_day_of_a_multi_day_feed(self):
        body = feeds.ecb_xml("2024-05-17").replace(
            "\t\t<Cube time='2024-05-17'>", "\t\t<Cube time='2024-05-16'><Cube currency='USD' rate='1.0800'/></Cube>"
            "\n\t\t<Cube time='2024-05-17'>")
        result = ecb.parse(body.encode())
        assert result.as_of.day == 17 and result.rates["USD"] == Decimal("1.0866")

    def test_it_rejects_a_currency_listed_twice_with_different_rates(self):
        again = "<Cube currency='USD' rate='1.2000'/><Cube currency='JPY' rate='169.20'/>"
        body = feeds.ecb_xml().replace("</Cube>\n\t</Cube>", again + "</Cube>\n\t</Cube>")
        result = ecb.parse(body.encode())
        assert "USD" not in result.rates and result.rejected == {"USD": "listed twice with different rates"}
        assert result.rates["JPY"] == Decimal("169.20")  # the same rate twice is harmless

    def test_a_feed_dated_after_today_is_a_transient_error(self):
        with pytest.raises(ProviderError, match="in the future") as info:
            ecb.parse(feeds.ecb_xml(date.today() + timedelta(days=2)).encode())
        assert info.value.transient is True
        assert ecb.parse(feeds.ecb_xml(date.today()).encode()).as_of.date() == date.today()

    @pytest.mark.parametrize("body", [b"", b"<html><body>Service Unavailable</body></html>", b'{"rates": {}}',
                                      feeds.BILLION_LAUGHS.encode(), feeds.ecb_xml(rates={}).encode()])
    def test_anything_but_the_feed_is_a_transient_error(self, body):
        with pytest.raises(ProviderError) as info:
            ecb.parse(body)
        assert info.value.transient is True


class OpenExchangeRatesTests:
    def test_it_sends_the_app_id_and_symbols(self, keyed):
        keyed.expect_request(OXR_PATH, query_string={"app_id": OXR_APP_ID, "symbols": "EUR,GBP,USD"}
                             ).respond_with_data(feeds.oxr_json({"EUR": "0.92", "GBP": "0.79"}))
        result = openexchangerates.fetch(symbols=["GBP", "EUR"])
        assert result.rates == {"EUR": Decimal("0.92"), "GBP": Decimal("0.79")}

    @pytest.mark.parametrize("status, message, kind", [
        (401, "invalid_app_id", "permanent"), (401, "missing_app_id", "permanent"),
        (429, "not_allowed", "permanent"),  # OXR's 429 for a feature the plan lacks: not a rate limit
        (400, "invalid_base", "permanent"), (429, "access_restricted", "limited"), (503, "server_error", "transient"),
    ])
    def test_it_types_its_errors(self, keyed, status, message, kind):
        oxr(keyed, feeds.oxr_error(status, message, "described"), status=status, **{"Retry-After": "90"})
        with pytest.raises(ProviderError) as info:
            openexchangerates.fetch()
        assert info.value.code == message
        assert isinstance(info.value, ProviderRateLimited) == (kind == "limited")
        assert info.value.transient == (kind != "permanent")
        if kind == "limited":
            assert info.value.retry_after == 90

    def test_it_reads_a_body_with_a_byte_order_mark(self, keyed):
        oxr(keyed, "\ufeff" + feeds.oxr_json({"EUR": "0.92", "GBP": "0.79"}))
        assert openexchangerates.fetch().rates == {"EUR": Decimal("0.92"), "GBP": Decimal("0.79")}

    def test_it_rejects_a_currency_listed_twice_with_different_rates(self, keyed):
        oxr(keyed, feeds.oxr_json({"EUR": "0.92", "GBP": "0.79", "JPY": "155.6", '"JPY"': "15.56"}).replace(
            '""JPY""', '"JPY"'))
        result = openexchangerates.fetch()
        assert result.rates == {"EUR": Decimal("0.92"), "GBP": Decimal("0.79")}
        assert result.rejected == {"JPY": "listed twice with different rates"}

    def test_a_200_html_page_is_transient_and_names_the_page(self, keyed):
        keyed.expect_request(OXR_PATH).respond_with_data("<html><head><title>Maintenance</title></head></html>",
                                                         content_type="text/html")
        with pytest.raises(ProviderError, match="HTML page.*Maintenance") as info:
            openexchangerates.fetch()
        assert info.value.transient is True


class FixerTests:
    @pytest.mark.parametrize("code, kind", [(101, "permanent"), (105, "permanent"), (201, "permanent"),
                                            (104, "limited"), (106, "transient")])
    def test_it_treats_success_false_with_http_200_as_an_error(self, keyed, code, kind):
        fixer_serves(keyed, feeds.fixer_error(code, "some_type", "some info"))
        with pytest.raises(ProviderError) as info:
            fixer.fetch()
        assert info.value.code == code and f"{code} some_type: some info" in str(info.value)
        assert isinstance(info.value, ProviderRateLimited) == (kind == "limited")
        assert info.value.transient == (kind != "permanent")

    def test_a_body_without_success_true_is_not_rates(self, keyed):
        fixer_serves(keyed, '{"timestamp": 1716030543, "base": "EUR", "rates": {"USD": 1.08}}')
        with pytest.raises(ProviderError, match="success:true") as info:
            fixer.fetch()
        assert info.value.transient is True

    def test_a_base_it_did_not_ask_for_is_refused(self, keyed):
        fixer_serves(keyed, feeds.fixer_json(base="USD"))
        with pytest.raises(ProviderError, match="asked for base EUR, got USD"):
            fixer.fetch()

    def test_the_key_never_appears_in_errors(self, keyed, settings):
        settings.FIXER_URL = "http://127.0.0.1:9/fixer/api"  # nothing listens on the discard port
        with pytest.raises(ProviderError) as info:
            fixer.fetch()
        assert info.value.transient is True and FIXER_KEY not in str(info.value)


def dripping_oxr(settings) -> RawServer:
    """OXR's latest.json sent by a slow-but-alive server: the head at once, then 10 bytes every
    0.25 s (40 bytes/s, ~11 s for the feed), as in issue 8's report."""
    whole = response(feeds.oxr_json(), content_type="application/json")
    server = RawServer(lambda request: drip(whole, size=10), pause=0.25)
    settings.OPEN_EXCHANGE_RATES_URL = server.url("/oxr/api")
    return server


@pytest.mark.timeout(60)
class SlowProviderTests:
    def test_a_dripping_provider_times_out_at_the_call_deadline(self, keyed, settings):
        with dripping_oxr(settings) as server:
            with pytest.raises(ProviderError) as info:
                openexchangerates.fetch(timeout=1)
            assert server.completed == 0  # given up mid-body, not after sitting through the drip
        assert (info.value.code, info.value.transient) == ("timeout", True)
        assert OXR_APP_ID not in str(info.value)

    @pytest.mark.django_db
    def test_the_chain_reaches_the_ecb_past_a_dripping_primary(self, keyed, settings):
        settings.FX_PROVIDERS = ["openexchangerates", "ecb"]
        settings.FX_HTTP_TIMEOUT = 3
        settings.FX_REFRESH_DEADLINE = 5
        serve_ecb(keyed)
        with dripping_oxr(settings) as server:
            result = rates_refresh()
            assert server.completed == 0
        assert result.provider == "ecb" and calls(keyed, ECB_PATH) == 1
        assert "openexchangerates error timeout (transient): timed out" in result.skipped[0]
