"""Alerts: recorded, delivered to a real local SMTP server and HTTP receiver, one per state change."""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone
from werkzeug import Response

from broxiva import jobs
from broxiva.alerts import HEALTH_SOURCE, check_queues, notify
from broxiva.locks import with_lock
from broxiva.models import Alert, OutboxJob
from broxiva.outbox import new_job_id
from broxiva.queues import get_queue
from broxiva.schedules import SCHEDULES
from tests.broxiva.ops_helpers import fill_queue
from tests.workers import wait_for

pytestmark = pytest.mark.django_db

WEBHOOK_PATH = "/hooks/T000/B000/secret-part"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.messages.append(envelope)
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        import email

        return [email.message_from_bytes(m.content)["Subject"] for m in self.messages]


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.ALERT_EMAILS = ["ops@broxiva.test", "oncall@broxiva.test"]
    yield inbox
    controller.stop()


@pytest.fixture
def webhook(httpserver, settings):
    httpserver.clear()  # a slow request of an earlier test may be logged late
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok")
    settings.ALERT_WEBHOOK_URL = httpserver.url_for(WEBHOOK_PATH)
    return httpserver


def posted(httpserver) -> list[dict]:
    return [request.get_json() for request, _ in httpserver.log]


class NotifyTests:
    def test_it_records_the_alert_and_delivers_it_by_email_and_webhook(self, smtp, webhook):
        alert = notify("FX rate jump USD/EUR", "EUR moved 14% since the last refresh", severity="critical",
                       source="fx", details={"base": "USD", "quote": "EUR", "change": 14.2})

        assert Alert.objects.get() == alert
        assert (alert.email_status, alert.webhook_status, alert.delivery_error) == ("sent", "sent", "")
        message = smtp.messages[0]
        assert sorted(message.rcpt_tos) == ["oncall@broxiva.test", "ops@broxiva.test"]
        assert smtp.subjects() == ["[Broxiva critical] FX rate jump USD/EUR"]
        assert b"EUR moved 14% since the last refresh" in message.content and b'"change": 14.2' in message.content
        [payload] = posted(webhook)
        assert payload["text"] == "[CRITICAL] FX rate jump USD/EUR\nEUR moved 14% since the last refresh"
        assert (payload["source"], payload["severity"], payload["details"]["quote"]) == ("fx", "critical", "EUR")
        assert payload["id"] == alert.pk

    def test_it_never_raises_when_the_channels_fail_and_keeps_the_webhook_url_secret(
        self, settings, httpserver, caplog
    ):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
        settings.ALERT_EMAILS = ["ops@broxiva.test"]
        httpserver.expect_request(WEBHOOK_PATH).respond_with_data("down", status=500)
        settings.ALERT_WEBHOOK_URL = httpserver.url_for(WEBHOOK_PATH)

        with caplog.at_level(logging.WARNING, logger="broxiva.alerts"):
            alert = notify("Queue email is CRITICAL", "body", severity="critical", source="queue-health")

        alert.refresh_from_db()
        assert (alert.email_status, alert.webhook_status) == ("failed", "failed")
        assert alert.delivery_error.startswith("email: ConnectionRefusedError")
        assert alert.delivery_error.endswith("webhook: HTTP 500")
        assert "secret-part" not in alert.delivery_error + caplog.text
        assert "webhook delivery failed: HTTP 500" in caplog.text

    def test_it_keeps_the_webhook_url_out_of_debug_logs(self, webhook, caplog):
        # LOG_LEVEL=DEBUG: urllib3 logs every request line, path included (Slack's secret).
        with caplog.at_level(logging.DEBUG):
            alert = notify("Queue email is CRITICAL", "body", severity="critical", source="queue-health")
        assert alert.webhook_status == "sent"
        ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")  # not the receiver's
        assert "alert id=" in ours and "secret-part" not in ours

    def test_it_gives_up_on_a_slow_webhook_after_its_timeout(self, settings, httpserver):
        def slow(request):
            time.sleep(1.5)
            return Response("late")

        httpserver.expect_request(WEBHOOK_PATH).respond_with_handler(slow)
        settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_TIMEOUT = httpserver.url_for(WEBHOOK_PATH), 1
        alert = notify("slow", "", source="test")
        assert alert.webhook_status == "failed"
        assert alert.delivery_error.startswith("webhook: Timeout: POST localhost: timed out after 1s")
        assert "secret-part" not in alert.delivery_error
        wait_for(lambda: httpserver.log, timeout=5, what="the slow handler to finish")  # before the next test

    def test_it_records_an_alert_with_no_channel_configured(self):
        alert = notify("line one\nline two", "b", severity="info", source="test")
        assert (alert.subject, alert.email_status, alert.webhook_status) == ("line one line two", "off", "off")

    def test_it_refuses_an_unknown_severity_and_records_nothing(self):
        with pytest.raises(ValueError, match="severity 'urgent' is not one of info, warning, critical"):
            notify("x", "y", severity="urgent", source="test")
        assert not Alert.objects.exists()


class QueueAlertTests:
    def test_it_alerts_once_per_state_change_ok_critical_ok(self, smtp, webhook):
        assert check_queues() == []  # every queue ok: nothing to say
        fill_queue("product-sync", 5001)

        [critical] = check_queues()
        assert check_queues() == [] and check_queues() == [], "still critical: no repeat"
        get_queue("product-sync").empty()
        [recovered] = check_queues()
        assert check_queues() == []

        assert (critical.severity, critical.subject) == ("critical", "Queue product-sync is CRITICAL (was ok)")
        assert critical.details["reasons"] == ["waiting jobs 5001 > 5000 (critical)", "no workers while 5001 jobs wait"]
        assert (recovered.severity, recovered.subject) == ("info", "Queue product-sync recovered (was critical)")
        assert Alert.objects.filter(source=HEALTH_SOURCE).count() == 2
        assert smtp.subjects() == ["[Broxiva critical] Queue product-sync is CRITICAL (was ok)",
                                   "[Broxiva info] Queue product-sync recovered (was critical)"]
        assert [p["text"].splitlines()[0] for p in posted(webhook)] == [
            "[CRITICAL] Queue product-sync is CRITICAL (was ok)", "[INFO] Queue product-sync recovered (was critical)"]

    def test_it_alerts_on_each_step_ok_warning_critical(self):
        fill_queue("email", 1001)
        [warning] = check_queues()
        fill_queue("email", 4000)
        [critical] = check_queues()
        assert (warning.severity, critical.severity) == ("warning", "critical")
        assert critical.subject == "Queue email is CRITICAL (was warning)"

    def test_it_reminds_while_a_queue_stays_critical(self, settings):
        settings.ALERT_REMINDER_INTERVAL = 600
        fill_queue("email", 5001)
        [first] = check_queues()
        Alert.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=601))

        [reminder] = check_queues()

        assert (reminder.subject, reminder.details["reminder"]) == ("Queue email is still CRITICAL", True)
        assert check_queues() == []
        settings.ALERT_REMINDER_INTERVAL = 0
        Alert.objects.update(created_at=timezone.now() - timedelta(days=1))
        assert check_queues() == [], "0 turns reminders off"

    def test_a_job_stuck_in_the_outbox_alerts_and_its_draining_clears_it(self, settings):
        settings.HEALTH_OUTBOX_WARNING_SECONDS, settings.HEALTH_OUTBOX_CRITICAL_SECONDS = 180, 900
        row = OutboxJob.objects.create(job_id=new_job_id(), queue="email", func="tests.jobs.sample.record", args=["x"])
        assert check_queues() == [], "a fresh row is the relay's ordinary minute of work"
        OutboxJob.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=1000))

        [critical] = check_queues()
        assert check_queues() == []
        OutboxJob.objects.all().delete()
        [cleared] = check_queues()

        assert (critical.severity, critical.details["queue"]) == ("critical", "outbox")
        assert critical.subject == "The job outbox is CRITICAL (was ok): committed jobs are not reaching Redis"
        assert "1 committed job(s) not yet in Redis" in critical.body
        assert (cleared.severity, cleared.subject) == ("info", "The job outbox drains again (was critical)")

    def test_overlapping_checks_do_not_send_twice(self):
        fill_queue("email", 5001)
        with with_lock("ops:health-alerts", ttl_seconds=30):
            assert check_queues() == []
        assert len(check_queues()) == 1

    def test_the_periodic_job_runs_the_check_every_minute(self):
        fill_queue("email", 5001)
        assert jobs.queue_health_check_job() == {"alerts": [Alert.objects.get().pk]}
        entry = next(e for e in SCHEDULES if e.id == "queue-health-check")
        assert (entry.func, entry.cron) == ("broxiva.jobs.queue_health_check_job", "* * * * *")


class AlertAdminTests:
    def test_it_lists_and_filters_alerts_read_only(self, admin_client):
        notify("Queue email is CRITICAL (was ok)", "b", severity="critical", source="queue-health")
        notify("FX rate jump", "b", severity="warning", source="fx")

        listing = admin_client.get("/admin/broxiva/alert/?severity__exact=critical").content.decode()
        assert "Queue email is CRITICAL" in listing and "FX rate jump" not in listing
        assert admin_client.get("/admin/broxiva/alert/add/").status_code == 403
        detail = admin_client.get(f"/admin/broxiva/alert/{Alert.objects.get(source='fx').pk}/change/")
        assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()


class CheckQueuesCommandTests:
    def run(self, *args: str) -> tuple[int, str]:
        from io import StringIO

        from django.core.management import call_command

        out = StringIO()
        try:
            call_command("check_queues", *args, stdout=out)
        except SystemExit as exc:
            return int(exc.code), out.getvalue()
        return 0, out.getvalue()

    def test_it_alerts_without_any_worker_and_exits_by_status(self, smtp):
        assert self.run()[0] == 0  # every queue ok
        fill_queue("product-sync", 5001)  # and no worker at all

        code, output = self.run()
        assert code == 2
        assert "product-sync" in output and "critical" in output and "alerts sent: 1" in output
        assert smtp.subjects() == ["[Broxiva critical] Queue product-sync is CRITICAL (was ok)"]
        assert self.run()[0] == 2 and len(smtp.subjects()) == 1, "still critical: no second alert"

    def test_it_only_evaluates_with_no_alerts(self, smtp):
        fill_queue("email", 1001)
        code, output = self.run("--no-alerts", "--json")
        assert code == 1
        assert '"status": "warning"' in output
        assert smtp.subjects() == [] and Alert.objects.count() == 0
