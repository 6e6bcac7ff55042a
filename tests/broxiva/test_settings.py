"""Settings come from the environment; bad values stop start-up with the variable's name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from broxiva.env import env_float, env_int, env_json

ROOT = Path(__file__).resolve().parents[2]
SUITE_ONLY = ("DATABASE_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE", "REDIS_URL")


def manage(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in SUITE_ONLY}
    base.update(DJANGO_SETTINGS_MODULE="broxiva.settings", BROXIVA_VAR_DIR=str(tmp_path / "var"), **env)
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=120)


class EmbeddedDefaultTests:
    def test_it_migrates_and_passes_check_on_sqlite(self, tmp_path):
        migrate = manage("migrate", "--noinput", tmp_path=tmp_path, DEBUG="true")
        assert migrate.returncode == 0, migrate.stderr
        assert (tmp_path / "var" / "db.sqlite3").exists()
        check = manage("check", tmp_path=tmp_path, DEBUG="true")
        assert check.returncode == 0, check.stderr
        assert "no issues" in check.stdout


class BadValueTests:
    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"REDIS_PORT": "sixty"}, "REDIS_PORT='sixty' is not an integer"),
            ({"REDIS_QUEUE_DB": "-1"}, "REDIS_QUEUE_DB=-1 is below the minimum 0"),
            ({"DEBUG": "perhaps"}, "DEBUG='perhaps' is not a boolean"),
            ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL"),
            ({"QUEUE_OVERRIDES": '{"fx_refresh": {"timeout": 5}}'}, "QUEUE_OVERRIDES: unknown queue 'fx_refresh'"),
            ({"QUEUE_OVERRIDES": '{"email": {"colour": 5}}'}, "QUEUE_OVERRIDES: email: only"),
            ({"QUEUE_OVERRIDES": "{not json"}, "QUEUE_OVERRIDES is not valid JSON"),
            ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not one of"),
            ({"FX_MAX_CHANGE_PERCENT": "nan"}, "FX_MAX_CHANGE_PERCENT='nan' is not a number"),
            ({"FX_REFRESH_DEADLINE": "1e999"}, "FX_REFRESH_DEADLINE='1e999' is not a finite number"),
            ({"QUEUE_OVERRIDES": '{"email": {"timeout": NaN}}'}, "QUEUE_OVERRIDES is not valid JSON: NaN"),
            ({"REDIS_SENTINELS": "127.0.0.1:²"}, "REDIS_SENTINELS entry '127.0.0.1:²' is not host:port"),
        ],
    )
    def test_it_names_the_variable(self, tmp_path, env, message):
        result = manage("check", tmp_path=tmp_path, DEBUG=env.pop("DEBUG", "true"), **env)
        assert result.returncode != 0
        assert message in result.stderr

    def test_it_requires_a_secret_key_outside_debug(self, tmp_path):
        result = manage("check", tmp_path=tmp_path, DEBUG="false")
        assert result.returncode != 0 and "SECRET_KEY is required" in result.stderr

    def test_it_reads_a_secret_from_a_file(self, tmp_path):
        secret = tmp_path / "secret"
        secret.write_text("from-a-file\n")
        result = manage("shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)",
                        tmp_path=tmp_path, DEBUG="false", SECRET_KEY_FILE=str(secret), ALLOWED_HOSTS="x")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "from-a-file"

    def test_it_refuses_queues_and_caches_in_the_same_redis_database(self, tmp_path):
        result = manage("check", tmp_path=tmp_path, DEBUG="true", REDIS_DB="3", REDIS_QUEUE_DB="3")
        assert result.returncode != 0 and "broxiva.E001" in result.stderr

    def test_it_namespaces_queue_names_under_the_prefix(self, tmp_path):
        code = "from django.conf import settings; print(sorted(settings.RQ_QUEUES)[0])"
        result = manage("shell", "-c", code, tmp_path=tmp_path, DEBUG="true", QUEUE_PREFIX="staging")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "staging:domain-verification"


class EnvHelperTests:
    @pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "1_0", "١٢", "0x10", "5 %"])
    def test_it_refuses_a_float_that_is_not_a_plain_finite_number(self, monkeypatch, raw):
        monkeypatch.setenv("BROXIVA_TEST_FLOAT", raw)
        with pytest.raises(ImproperlyConfigured, match="BROXIVA_TEST_FLOAT="):
            env_float("BROXIVA_TEST_FLOAT", 1.0, minimum=0)

    @pytest.mark.parametrize(("raw", "value"), [("2.5", 2.5), (" 10 ", 10.0), ("1e3", 1000.0), (".5", 0.5), ("", 1.0)])
    def test_it_reads_a_plain_float(self, monkeypatch, raw, value):
        monkeypatch.setenv("BROXIVA_TEST_FLOAT", raw)
        assert env_float("BROXIVA_TEST_FLOAT", 1.0, minimum=0) == value

    def test_it_applies_a_float_maximum(self, monkeypatch):
        monkeypatch.setenv("BROXIVA_TEST_FLOAT", "101")
        with pytest.raises(ImproperlyConfigured, match="above the maximum 100"):
            env_float("BROXIVA_TEST_FLOAT", 1.0, maximum=100)

    @pytest.mark.parametrize("raw", ["6_379", "６３７９", "1.0", "1e3", "0x10", "nan"])
    def test_it_refuses_an_integer_that_is_not_plain_ascii_digits(self, monkeypatch, raw):
        monkeypatch.setenv("BROXIVA_TEST_INT", raw)
        with pytest.raises(ImproperlyConfigured, match="is not an integer"):
            env_int("BROXIVA_TEST_INT", 1)

    @pytest.mark.parametrize(("raw", "value"), [("42", 42), (" -3 ", -3), ("+7", 7), ("", 1)])
    def test_it_reads_a_plain_integer(self, monkeypatch, raw, value):
        monkeypatch.setenv("BROXIVA_TEST_INT", raw)
        assert env_int("BROXIVA_TEST_INT", 1) == value

    @pytest.mark.parametrize("raw", ['{"a": NaN}', '{"a": Infinity}', "-Infinity"])
    def test_it_refuses_json_constants_that_are_not_json(self, monkeypatch, raw):
        monkeypatch.setenv("BROXIVA_TEST_JSON", raw)
        with pytest.raises(ImproperlyConfigured, match="BROXIVA_TEST_JSON is not valid JSON"):
            env_json("BROXIVA_TEST_JSON", {})


class LoggingTests:
    def test_it_never_lets_urllib3_log_request_lines_which_carry_provider_keys(self, tmp_path):
        code = "import logging; print(logging.getLogger('urllib3.connectionpool').getEffectiveLevel())"
        result = manage("shell", "-c", code, tmp_path=tmp_path, DEBUG="true", LOG_LEVEL="DEBUG")
        assert result.returncode == 0, result.stderr
        assert int(result.stdout.strip().splitlines()[-1]) >= 20  # INFO: no DEBUG request lines


class ErrorReportTests:
    def test_it_hides_credentials_held_in_urls_from_error_pages(self, settings):
        from django.views.debug import get_default_exception_reporter_filter

        settings.REDIS_URL = "redis://:hunter2@redis.internal:6379/0"
        settings.ALERT_WEBHOOK_URL = "https://hooks.slack.com/services/T0/B0/sekret"
        settings.CACHES = {"default": {"BACKEND": "x", "LOCATION": "redis://:hunter2@redis.internal:6379/0"}}
        settings.RQ_QUEUES = {"email": {"URL": "redis://:hunter2@redis.internal:6379/1"}}
        shown = repr(get_default_exception_reporter_filter().get_safe_settings())
        assert "hunter2" not in shown and "sekret" not in shown
        assert "redis.internal" not in shown
