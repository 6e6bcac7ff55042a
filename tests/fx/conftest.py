from __future__ import annotations

import pytest

from tests.fx import feeds

ECB_PATH = "/ecb/stats/eurofxref/eurofxref-daily.xml"
OXR_PATH = "/oxr/api/latest.json"
FIXER_PATH = "/fixer/api/latest"
OXR_APP_ID = "oxr-test-app-id-0123456789"
FIXER_KEY = "fixer-test-access-key-9876543210"


@pytest.fixture(scope="session")
def make_httpserver():
    """pytest-httpserver's server, threaded: a provider that hangs must not block the next one."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture(autouse=True)
def fresh_rate_table():
    """Each test starts with an empty in-process rate table (Redis and Postgres are emptied too)."""
    from fx.services import reset_local_cache

    reset_local_cache()
    yield
    reset_local_cache()


@pytest.fixture
def providers(settings, httpserver):
    """Point every provider at the local HTTP server; only the ECB is configured (no keys)."""
    settings.FX_ECB_URL = httpserver.url_for(ECB_PATH)
    settings.OPEN_EXCHANGE_RATES_URL = httpserver.url_for("/oxr/api")
    settings.FIXER_URL = httpserver.url_for("/fixer/api")
    settings.OPEN_EXCHANGE_RATES_APP_ID = ""
    settings.FIXER_API_KEY = ""
    settings.FX_PROVIDERS = ["openexchangerates", "fixer", "ecb"]
    settings.FX_BASE_CURRENCIES = ["USD", "EUR", "GBP"]
    settings.FX_PROVIDER_RETRIES = 1
    settings.FX_PROVIDER_RETRY_DELAY = 0
    settings.FX_HTTP_TIMEOUT = 2
    settings.FX_MAX_CHANGE_PERCENT = 10
    settings.FX_MAX_AGE_HOURS = 96
    return httpserver


def serve_ecb(server, body: str | None = None, *, status: int = 200, content_type: str = "text/xml"):
    server.expect_request(ECB_PATH).respond_with_data(feeds.ecb_xml() if body is None else body, status=status,
                                                      content_type=content_type)


def calls(server, path: str) -> int:
    return sum(1 for request, _ in server.log if request.path == path)
