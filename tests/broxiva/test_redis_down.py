"""Redis unreachable: one clear line and a non-zero exit, 503 JSON, and an alert that needs no Redis.

"Unreachable" is real here: the settings point at a free loopback port nothing listens on.
The commands run as real ``manage.py`` subprocesses against the test database.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from broxiva.alerts import REDIS_SOURCE, redis_unreachable
from broxiva.models import Alert
from tests.broxiva.test_alerts import WEBHOOK_PATH, Inbox, free_port, posted
from tests.workers import ROOT, worker_env

PASSWORD = "hunter2-redis"  # noqa: S105 (a test value that must never be shown)


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=worker_env(**env),
                          capture_output=True, text=True, timeout=120)


def redis_down_env(**extra: str) -> dict[str, str]:
    """Settings of a deployment whose Redis (with a password) is not listening."""
    return {"REDIS_PORT": str(free_port()), "REDIS_PASSWORD": PASSWORD, **extra}


def refused_line(port: str) -> str:
    return f"Redis is unreachable: ConnectionError: Error 111 connecting to 127.0.0.1:{port}. Connection refused."


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.mark.django_db(transaction=True)
class CheckQueuesCommandTests:
    def test_it_alerts_once_by_email_and_webhook_exits_2_and_says_so_when_redis_comes_back(
        self, smtp_server, httpserver
    ):
        inbox, smtp_port = smtp_server
        httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok")
        channels = {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port), "ALERT_EMAILS": "oncall@broxiva.test",
            "ALERT_WEBHOOK_URL": httpserver.url_for(WEBHOOK_PATH),
        }
        down = redis_down_env(**channels)

        first = manage("check_queues", **down)

        assert first.returncode == 2, first.stderr
        assert "Traceback" not in first.stderr
        assert first.stderr.splitlines()[-1] == f"{refused_line(down['REDIS_PORT'])} (alert sent)"
        assert inbox.subjects() == ["[Broxiva critical] Redis is unreachable: no job can be queued or run"]
        [payload] = posted(httpserver)
        assert payload["source"] == REDIS_SOURCE and payload["severity"] == "critical"
        assert refused_line(down["REDIS_PORT"]) in payload["text"]
        alert = Alert.objects.get()
        assert (alert.email_status, alert.webhook_status) == ("sent", "sent")

        again = manage("check_queues", **down)  # the cron's next minute: same outage, no new alert

        assert again.returncode == 2
        assert again.stderr.splitlines()[-1] == f"{refused_line(down['REDIS_PORT'])} (alert already sent)"
        assert len(inbox.messages) == 1 and Alert.objects.count() == 1

        back = manage("check_queues", **channels)  # the test Redis, empty queues: all ok

        assert back.returncode == 0, back.stderr
        assert inbox.subjects()[-1] == "[Broxiva info] Redis is reachable again"
        shown = [first.stdout, first.stderr, again.stderr, str(posted(httpserver))]
        shown += [m.content.decode() for m in inbox.messages]
        shown += [f"{a.subject} {a.body} {a.details} {a.delivery_error}" for a in Alert.objects.all()]
        assert not [text for text in shown if PASSWORD in text]

    def test_it_prints_json_and_sends_nothing_with_no_alerts(self):
        down = redis_down_env()

        result = manage("check_queues", "--json", "--no-alerts", **down)

        assert result.returncode == 2
        assert result.stderr == f"{refused_line(down['REDIS_PORT'])} (no alert (--no-alerts))\n"
        assert '"status": "critical"' in result.stdout and PASSWORD not in result.stdout
        assert not Alert.objects.exists()


class CheckQueuesWithoutADatabaseTests:
    def test_it_still_exits_2_with_one_line_when_the_database_is_down_too(self, db):
        down = redis_down_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/broxiva")

        result = manage("check_queues", **down)

        assert result.returncode == 2
        assert result.stderr == (f"{refused_line(down['REDIS_PORT'])} "
                                 "(no alert: the database is unavailable too (OperationalError))\n")


class OperatorCommandTests:
    @pytest.mark.parametrize("command", [
        ("queues",), ("queues", "--json"), ("retry_jobs", "email", "--all"),
        ("retry_jobs", "email", "--job-id", "abc"), ("clean_jobs", "email", "--older-than", "1h"),
    ])
    def test_it_prints_one_line_and_exits_non_zero(self, db, command):
        down = redis_down_env()

        result = manage(*command, **down)

        assert result.returncode == 1
        assert result.stderr == f"CommandError: {refused_line(down['REDIS_PORT'])}\n"
        assert result.stdout == ""


class EndpointTests:
    @pytest.fixture(autouse=True)
    def redis_down(self, settings):
        port = free_port()
        settings.REDIS_PASSWORD = PASSWORD
        settings.REDIS_QUEUE_URL = f"redis://:{PASSWORD}@127.0.0.1:{port}/15"
        settings.METRICS_TOKEN = "m3trics"
        return port

    @pytest.mark.parametrize("path", ["/health/queues", "/health/queue/email"])
    def test_the_health_endpoints_answer_503_json(self, client, redis_down, path):
        response = client.get(path)

        assert response.status_code == 503
        assert response.json() == {"status": "critical", "error": refused_line(str(redis_down))}

    def test_metrics_answers_503_json_for_the_scraper(self, client, redis_down):
        response = client.get("/metrics", headers={"Authorization": "Bearer m3trics"})

        assert response.status_code == 503
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"] == refused_line(str(redis_down))
        assert PASSWORD not in response.content.decode()


@pytest.mark.django_db
class DashboardTests:
    def test_an_operator_reads_why_the_dashboard_cannot_show_the_queues(self, admin_client, settings):
        port = free_port()
        settings.RQ_QUEUES = {
            name: {**config, "URL": f"redis://:{PASSWORD}@127.0.0.1:{port}/15"}
            for name, config in settings.RQ_QUEUES.items()
        }

        response = admin_client.get("/django-rq/")

        page = response.content.decode()
        assert response.status_code == 503
        assert "Redis is unreachable" in page and refused_line(str(port)) in page
        assert PASSWORD not in page


class RedisErrorMessageTests:
    def test_it_masks_the_password_wherever_it_appears(self, settings):
        from redis.exceptions import ConnectionError as RedisConnectionError

        from broxiva.health import redis_error_message

        settings.REDIS_PASSWORD = "p@ss/word"
        message = redis_error_message(RedisConnectionError("AUTH p@ss/word failed for redis://:p%40ss%2Fword@h/1"))

        assert message == "Redis is unreachable: ConnectionError: AUTH *** failed for redis://:***@h/1"


@pytest.mark.django_db
class RedisAlertTests:
    def test_it_reminds_while_redis_stays_down(self, settings):
        settings.ALERT_REMINDER_INTERVAL = 600
        first = redis_unreachable("Redis is unreachable: ConnectionError")
        assert redis_unreachable("Redis is unreachable: ConnectionError") is None
        Alert.objects.filter(pk=first.pk).update(created_at=first.created_at - timedelta(seconds=601))

        reminder = redis_unreachable("Redis is unreachable: ConnectionError")

        assert reminder is not None and reminder.subject == "Redis is still unreachable"
        assert reminder.details["reminder"] is True
