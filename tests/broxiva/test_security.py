"""HTTPS settings: on outside DEBUG (check --deploy clean), off in DEBUG, proxies and probes handled."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from broxiva.settings import _proxy_ssl_header
from tests.broxiva.test_settings import manage

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "Zq7vN2xK9pL4mR8tW1yB6cF3hJ5sD0gA-production-like-key-for-check-deploy",
    "ALLOWED_HOSTS": "shop.broxiva.test",
}
HTTPS_WARNINGS = ("security.W004", "security.W008", "security.W012", "security.W016")
SHOW = (
    "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, "
    "s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER)"
)


class DeployCheckTests:
    def test_check_deploy_has_no_https_warnings_in_production(self, tmp_path):
        result = manage("check", "--deploy", tmp_path=tmp_path, **PRODUCTION)

        assert result.returncode == 0, result.stderr
        assert [w for w in HTTPS_WARNINGS if w in result.stdout + result.stderr] == []

    def test_it_turns_https_off_in_debug_for_the_quick_start(self, tmp_path):
        result = manage("shell", "-c", SHOW, tmp_path=tmp_path, DEBUG="true")

        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "False False False 0 None"

    def test_it_reads_each_setting_from_the_environment(self, tmp_path):
        env = {**PRODUCTION, "SECURE_SSL_REDIRECT": "false", "SECURE_HSTS_SECONDS": "3600",
               "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}
        result = manage("shell", "-c", SHOW, tmp_path=tmp_path, **env)

        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "False True True 3600 ('HTTP_X_FORWARDED_PROTO', 'https')"

    def test_it_refuses_a_bad_redirect_exemption(self, tmp_path):
        result = manage("check", tmp_path=tmp_path, DEBUG="true", SECURE_REDIRECT_EXEMPT="^health/(")

        assert result.returncode != 0 and "SECURE_REDIRECT_EXEMPT: '^health/(' is not a regex" in result.stderr


class ProxyHeaderTests:
    @pytest.mark.parametrize(("raw", "expected"), [
        ("", None),
        ("HTTP_X_FORWARDED_PROTO", ("HTTP_X_FORWARDED_PROTO", "https")),
        ("X-Forwarded-Proto", ("HTTP_X_FORWARDED_PROTO", "https")),
        ("X-Forwarded-Ssl=on", ("HTTP_X_FORWARDED_SSL", "on")),
    ])
    def test_it_reads_the_header_name_and_value(self, raw, expected):
        assert _proxy_ssl_header(raw) == expected

    @pytest.mark.parametrize("raw", ["X Forwarded Proto", "X-Forwarded-Proto=", "=https", "X-Forwärded"])
    def test_it_refuses_what_is_not_a_header(self, raw):
        with pytest.raises(ImproperlyConfigured, match="SECURE_PROXY_SSL_HEADER="):
            _proxy_ssl_header(raw)


@pytest.mark.django_db
class RedirectTests:
    @pytest.fixture(autouse=True)
    def https_on(self, settings):
        # The test settings turn the redirect off (the test client speaks http); the rest is the default.
        settings.SECURE_SSL_REDIRECT = True
        settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    def test_it_redirects_plain_http_to_https(self, client):
        response = client.get("/admin/login/")

        assert response.status_code == 301 and response["Location"] == "https://testserver/admin/login/"

    def test_it_trusts_the_proxys_header_and_sends_hsts(self, client):
        response = client.get("/admin/login/", headers={"X-Forwarded-Proto": "https"})

        assert response.status_code == 200
        assert response["Strict-Transport-Security"] == "max-age=31536000"
        assert "Secure" in str(response.cookies["csrftoken"])

    def test_it_answers_load_balancer_probes_over_plain_http(self, client):
        assert client.get("/health/").status_code == 200
        assert client.get("/health/queues").status_code == 200
