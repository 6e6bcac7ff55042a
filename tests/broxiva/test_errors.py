"""Error tracking (broxiva.errors): events reach a local Sentry endpoint, tagged, without secrets.

The endpoint is pytest-httpserver speaking Sentry's ingestion API (``POST /api/<project>/envelope/``,
gzip-compressed envelopes); the SDK is the real sentry-sdk, in a real rqworker and in this process.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from broxiva import errors
from broxiva.queues import enqueue
from tests.broxiva.sentry_jobs import fails_permanently, fails_with_secrets
from tests.workers import ROOT, running_worker, wait_for, worker_env

SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-test-0123456789abcdef",
    "OPEN_EXCHANGE_RATES_APP_ID": "oxr-app-id-5551234",
    "FIXER_API_KEY": "fixer-access-key-98765",
    "EMAIL_HOST_PASSWORD": "smtp-password-4242",
}


def events(server) -> list[dict]:
    """The error events (not sessions or client reports) the endpoint received, parsed."""
    found = []
    for request, _ in server.log:
        body = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                found.append(json.loads(payload))
    return found


@pytest.fixture
def sentry(httpserver):
    httpserver.expect_request("/api/1/envelope/", method="POST").respond_with_json({"id": "0" * 32})
    httpserver.dsn = f"http://public0key@127.0.0.1:{httpserver.port}/1"
    return httpserver


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
class WorkerTests:
    def env(self, sentry, **extra: str) -> dict[str, str]:
        return worker_env(SENTRY_DSN=sentry.dsn, SENTRY_ENVIRONMENT="ci", SENTRY_RELEASE="test-1",
                          QUEUE_OVERRIDES=json.dumps({"fx-refresh": {"attempts": 2, "backoff_base": 1}}),
                          **SECRETS, **extra)

    def test_a_job_that_fails_for_good_is_one_event_tagged_with_the_job_and_free_of_secrets(self, sentry, settings):
        settings.QUEUE_OVERRIDES = {"fx-refresh": {"attempts": 2, "backoff_base": 1}}
        job_id = enqueue("fx-refresh", fails_with_secrets, tenant_id=7)

        with running_worker("fx-refresh", env=self.env(sentry)):
            wait_for(lambda: events(sentry), timeout=90, what="the event at the Sentry endpoint")

        [event] = events(sentry)  # the first attempt failed with a retry left: not reported
        assert event["tags"]["job_id"] == job_id
        assert event["tags"]["queue"] == "fx-refresh"
        assert event["tags"]["attempt"] == "2"
        assert event["tags"]["tenant"] == "7"
        assert event["environment"] == "ci" and event["release"] == "test-1"
        [exception] = event["exception"]["values"]
        assert exception["type"] == "RuntimeError"
        assert exception["value"].startswith("provider refused [Filtered] at https://rates.example.test/latest.json?")
        assert "app_id=[Filtered]&base=USD" in exception["value"]
        assert "redis://[Filtered]@cache.internal:6379/0" in exception["value"]
        assert event["extra"]["rq-job"]["job_id"] == job_id
        assert "args" not in event["extra"]["rq-job"] and "kwargs" not in event["extra"]["rq-job"]
        assert all("vars" not in frame for frame in exception["stacktrace"]["frames"])
        raw = json.dumps(events(sentry))
        for name, secret in SECRETS.items():
            assert secret not in raw, name
        assert "hunter2-redis" not in raw

    def test_a_permanent_error_is_reported_on_its_first_and_only_attempt(self, sentry, settings):
        settings.QUEUE_OVERRIDES = {"fx-refresh": {"attempts": 2, "backoff_base": 1}}
        job_id = enqueue("fx-refresh", fails_permanently, tenant_id=3)

        with running_worker("fx-refresh", env=self.env(sentry)):
            wait_for(lambda: events(sentry), timeout=60, what="the event at the Sentry endpoint")

        [event] = events(sentry)
        assert (event["tags"]["job_id"], event["tags"]["attempt"]) == (job_id, "1")
        assert event["exception"]["values"][0]["value"] == "the shop refused our token [Filtered]"

    def test_without_a_dsn_the_sdk_is_never_initialised(self, sentry):
        script = "import django; django.setup(); import sentry_sdk; print(sentry_sdk.get_client().is_active())"
        env = worker_env(**SECRETS)
        env.pop("SENTRY_DSN", None)

        result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=60, check=True)
        with_dsn = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=self.env(sentry),
                                  capture_output=True, text=True, timeout=60, check=True)

        assert (result.stdout.strip(), with_dsn.stdout.strip()) == ("False", "True")


@csrf_exempt
def crash(request):
    raise ValueError("view exploded")


urlpatterns = [path("crash/", crash)]


@pytest.mark.django_db(transaction=True)
class WebTests:
    @pytest.fixture
    def sdk(self, sentry, settings):
        import sentry_sdk
        from django.conf import settings as live

        for name, value in SECRETS.items():
            setattr(settings, name, value)
        settings.ROOT_URLCONF = __name__
        errors.init_sentry(sentry.dsn, environment="ci", release=None, traces_sample_rate=0.0,
                           settings_module=live._wrapped)
        yield sentry
        sentry_sdk.get_client().close()
        sentry_sdk.init(dsn=None)  # back to no client for the rest of the process

    def test_a_view_error_is_reported_without_cookies_body_or_credentials(self, sdk, live_server):
        import requests
        import sentry_sdk

        # Through a real WSGI server (the live server's WSGIHandler, which the SDK wraps as under gunicorn).
        response = requests.post(
            f"{live_server.url}/crash/?page=2&token=abc123secret", data={"password": "pw-in-the-body"},
            headers={"Authorization": f"Bearer {SECRETS['FIXER_API_KEY']}", "Cookie": "sessionid=cookie-value-77",
                     "X-Request-Id": "req-1"}, timeout=30)
        sentry_sdk.get_client().flush(timeout=10)

        assert response.status_code == 500
        [event] = events(sdk)
        assert event["exception"]["values"][0]["value"] == "view exploded"
        request = event["request"]
        assert request["method"] == "POST" and request["url"] == f"{live_server.url}/crash/"
        assert request["headers"]["X-Request-Id"] == "req-1"  # ordinary headers kept
        assert request["headers"]["Authorization"] == "[Filtered]"
        assert "page=2" in request["query_string"] and "abc123secret" not in request["query_string"]
        assert "data" not in request and "cookies" not in request
        assert "ip_address" not in event.get("user", {})
        raw = json.dumps(event)
        for secret in ("abc123secret", "pw-in-the-body", SECRETS["FIXER_API_KEY"], "cookie-value-77"):
            assert secret not in raw, secret


class ScrubTests:
    def test_it_masks_secret_values_url_passwords_and_secret_query_parameters_everywhere(self):
        event = {"message": "key sk-1234567 failed", "breadcrumbs": {"values": [
            {"data": {"url": "https://u:p4ss@host/x?api_key=zz&page=2&sig=abc"}}]}, "tags": ("sk-1234567",)}

        scrubbed = errors.scrub(event, ("sk-1234567",))

        assert scrubbed == {"message": "key [Filtered] failed", "breadcrumbs": {"values": [
            {"data": {"url": "https://[Filtered]@host/x?api_key=[Filtered]&page=2&sig=[Filtered]"}}]},
            "tags": ("[Filtered]",)}

    def test_secret_values_come_from_settings_named_like_secrets_not_from_paths_or_short_values(self):
        class Settings:
            SECRET_KEY = "django-insecure-abcdef"
            ALERT_WEBHOOK_URL = "https://hooks.slack.test/services/T0/B0/XYZ"
            FCM_CREDENTIALS_FILE = "/etc/fcm.json"
            STATIC_URL = "/static/"
            HEALTH_TOKEN = "abc"  # too short to mask safely
            RQ_QUEUES = {"email": {"URL": "redis://:pw-123456@h:6379/15"}}
            DATABASES = {"default": {"PASSWORD": "db-password-1"}}
            DEBUG = True

        assert set(errors.secret_values(Settings)) == {
            "django-insecure-abcdef", "https://hooks.slack.test/services/T0/B0/XYZ",
            "redis://:pw-123456@h:6379/15", "db-password-1"}

    def test_a_bad_dsn_stops_start_up_naming_the_variable_not_its_value(self):
        with pytest.raises(ImproperlyConfigured) as caught:
            errors.init_sentry("not-a-dsn-secretkey", environment="x", release=None, traces_sample_rate=0,
                               settings_module=object())

        assert str(caught.value).startswith("SENTRY_DSN is not a valid Sentry DSN")
        assert "secretkey" not in str(caught.value)
