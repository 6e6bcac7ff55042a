"""Operator alerts: recorded in the database, sent by e-mail and/or to a chat webhook.

``notify()`` is the one way code raises an alert (the FX worker calls it when a rate jumps;
``check_queues()`` when a queue changes state). The alert row is written first, so an alert
exists even when every channel is down; each channel's outcome is then stored on the row. A
failing channel is logged and recorded, never raised into the caller: an alert must not fail
the job that raised it.

Channels (settings, docs/operations.md):
- e-mail to ``ALERT_EMAILS`` through Django's e-mail backend (``EMAIL_*``);
- a JSON POST to ``ALERT_WEBHOOK_URL`` whose ``text`` field is what Slack (and Mattermost,
  Rocket.Chat, Teams' Slack-compatible hooks) display; the other fields carry the structured
  alert for any other receiver. The URL is a secret: it never appears in logs or on the row.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.utils import timezone

from broxiva import health, http
from broxiva.models import Alert

logger = logging.getLogger(__name__)

HEALTH_SOURCE = "queue-health"
REDIS_SOURCE = "redis-health"


def notify(
    subject: str, body: str, *, severity: str = "warning", source: str, details: dict | None = None
) -> Alert:
    """Record an alert and send it to the configured channels; return the saved ``Alert``.

    ``severity`` is ``info``, ``warning`` or ``critical`` (ValueError otherwise). Channel
    failures are logged and stored on the alert (``email_status``/``webhook_status`` =
    ``failed``, ``delivery_error``), never raised.
    """
    if severity not in Alert.Severity.values:
        raise ValueError(f"severity {severity!r} is not one of {', '.join(Alert.Severity.values)}")
    if not source:
        raise ValueError("an alert needs a source (what raised it)")
    alert = Alert.objects.create(
        severity=severity,
        source=str(source)[:100],
        subject=" ".join(str(subject).split())[:255],  # one line: it becomes an e-mail header
        body=str(body),
        details=json.loads(json.dumps(details or {}, default=str)),
    )
    errors: list[str] = []
    alert.email_status = _deliver(alert, "email", _send_email, bool(settings.ALERT_EMAILS), errors)
    alert.webhook_status = _deliver(alert, "webhook", _send_webhook, bool(settings.ALERT_WEBHOOK_URL), errors)
    alert.delivery_error = "; ".join(errors)
    Alert.objects.filter(pk=alert.pk).update(
        email_status=alert.email_status, webhook_status=alert.webhook_status, delivery_error=alert.delivery_error
    )
    logger.info(
        "alert id=%s severity=%s source=%s email=%s webhook=%s subject=%s",
        alert.pk, alert.severity, alert.source, alert.email_status, alert.webhook_status, alert.subject,
    )
    return alert


def _deliver(alert: Alert, channel: str, send, configured: bool, errors: list[str]) -> str:
    if not configured:
        return Alert.Delivery.OFF
    try:
        send(alert)
    except Exception as exc:
        error = _describe(exc)
        logger.warning("alert id=%s %s delivery failed: %s", alert.pk, channel, error)
        errors.append(f"{channel}: {error}")
        return Alert.Delivery.FAILED
    return Alert.Delivery.SENT


def _describe(exc: Exception) -> str:
    if isinstance(exc, WebhookRejected):
        return str(exc)
    # broxiva.http's messages name the host only, never the webhook URL's path (its token).
    return f"{type(exc).__name__}: {exc}"[:500]


class WebhookRejected(Exception):
    """The webhook receiver answered with a non-2xx status."""


def _text(alert: Alert) -> str:
    lines = [f"[{alert.severity.upper()}] {alert.subject}"]
    if alert.body:
        lines.append(alert.body)
    return "\n".join(lines)


def _send_email(alert: Alert) -> None:
    details = json.dumps(alert.details, indent=2, sort_keys=True, default=str) if alert.details else ""
    body = "\n\n".join(
        part for part in (
            alert.body,
            f"Source: {alert.source}\nSeverity: {alert.severity}\nAt: {alert.created_at.isoformat()}",
            f"Details:\n{details}" if details else "",
        ) if part
    )
    EmailMessage(
        subject=f"[Broxiva {alert.severity}] {alert.subject}",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(settings.ALERT_EMAILS),
    ).send(fail_silently=False)


def _send_webhook(alert: Alert) -> None:
    payload = {
        "text": _text(alert),
        "id": alert.pk,
        "severity": alert.severity,
        "source": alert.source,
        "subject": alert.subject,
        "body": alert.body,
        "details": alert.details,
        "created_at": alert.created_at.isoformat(),
    }
    # Through the kernel's client like every outbound call (deadline, size cap), trusted (an
    # operator's setting, not a tenant's URL), and with secret_path: Slack-style URLs carry their
    # token in the path, which must reach neither the logs nor the error stored on the alert.
    response = http.post(
        settings.ALERT_WEBHOOK_URL, json=payload, timeout=settings.ALERT_WEBHOOK_TIMEOUT, max_redirects=0,
        max_bytes=64 * 1024, secret_path=True,
    )
    if not 200 <= response.status < 300:
        raise WebhookRejected(f"HTTP {response.status}")


# --- Queue health alerts ----------------------------------------------------------------------


def last_health_alert(queue_name: str) -> Alert | None:
    return (
        Alert.objects.filter(source=HEALTH_SOURCE, details__queue=queue_name).order_by("-created_at", "-id").first()
    )


def check_queues() -> list[Alert]:
    """Compare each queue's health with its last alerted state; alert on changes and reminders.

    An alert goes out when a queue's status changes (ok → warning → critical, and back), and
    again every ``ALERT_REMINDER_INTERVAL`` seconds while it stays critical — not on every check.
    A lock keeps two overlapping checks from sending the same alert twice.
    """
    from broxiva.locks import LockNotAcquired, with_lock

    try:
        with with_lock("ops:health-alerts", ttl_seconds=60, wait_time_ms=0, keep_alive=True):
            return _redis_recovered() + _check_queues()
    except LockNotAcquired:
        logger.info("queue health check skipped: another check is running")
        return []


def _check_queues() -> list[Alert]:
    report = health.queues_health()
    reminder = settings.ALERT_REMINDER_INTERVAL
    now = timezone.now()
    sent: list[Alert] = []
    for name, queue in report["queues"].items():
        change = _change(name, queue["status"], reminder, now)
        if change is not None:
            sent.append(_queue_alert(name, queue, change[0], reminder=change[1]))
    outbox = report.get("outbox")
    # "unknown": the database did not answer about the outbox; nothing to compare, say nothing.
    if outbox is not None and outbox["status"] != health.UNKNOWN:
        change = _change(OUTBOX, outbox["status"], reminder, now)
        if change is not None:
            sent.append(_outbox_alert(outbox, change[0], reminder=change[1]))
    return sent


def _change(name: str, status: str, reminder: int, now: Any) -> tuple[str, bool] | None:
    """Return (previous status, is a reminder) if ``name``'s status calls for an alert, else None."""
    last = last_health_alert(name)
    previous = last.details.get("status", health.OK) if last is not None else health.OK
    is_reminder = (
        status == previous == health.CRITICAL
        and reminder > 0
        and last is not None
        and now - last.created_at >= timedelta(seconds=reminder)
    )
    if status == previous and not is_reminder:
        return None
    return previous, is_reminder


# The outbox is alerted on like a queue, under the name "outbox" (no queue has that name).
OUTBOX = "outbox"


def _outbox_alert(outbox: dict[str, Any], previous: str, *, reminder: bool) -> Alert:
    status, is_reminder = outbox["status"], reminder
    if is_reminder:
        subject = "The job outbox is still CRITICAL"
    elif status == health.OK:
        subject = f"The job outbox drains again (was {previous})"
    else:
        subject = f"The job outbox is {status.upper()} (was {previous}): committed jobs are not reaching Redis"
    reasons = "\n".join(f"- {reason}" for reason in outbox["reasons"]) or "- all thresholds clear"
    return notify(
        subject,
        f"{reasons}\nwaiting={outbox.get('waiting')} oldest_age_s={outbox.get('oldestAgeSeconds')}",
        severity=Alert.Severity.INFO if status == health.OK else status,
        source=HEALTH_SOURCE,
        details={
            "queue": OUTBOX, "status": status, "previous": previous, "reminder": is_reminder,
            "reasons": outbox["reasons"], "waiting": outbox.get("waiting"),
            "oldestAgeSeconds": outbox.get("oldestAgeSeconds"),
        },
    )


def _queue_alert(name: str, queue: dict[str, Any], previous: str, *, reminder: bool) -> Alert:
    status = queue["status"]
    if reminder:
        subject = f"Queue {name} is still CRITICAL"
    elif status == health.OK:
        subject = f"Queue {name} recovered (was {previous})"
    else:
        subject = f"Queue {name} is {status.upper()} (was {previous})"
    numbers = (
        f"waiting={queue['waiting']} active={queue['active']} failed={queue['failed']} "
        f"scheduled={queue['scheduled']} workers={queue['workers']} "
        f"oldest_waiting_age_s={queue['oldestWaitingAgeSeconds']}"
    )
    reasons = "\n".join(f"- {reason}" for reason in queue["reasons"]) or "- all thresholds clear"
    return notify(
        subject,
        f"{reasons}\n{numbers}",
        severity=Alert.Severity.INFO if status == health.OK else status,
        source=HEALTH_SOURCE,
        details={
            "queue": name,
            "status": status,
            "previous": previous,
            "reminder": reminder,
            "reasons": queue["reasons"],
            "stats": {k: queue[k] for k in ("waiting", "active", "failed", "scheduled", "workers")},
            "oldestWaitingAgeSeconds": queue["oldestWaitingAgeSeconds"],
        },
    )


# --- Redis reachability alerts ----------------------------------------------------------------
# When Redis is down, the Redis lock above cannot be taken and the queues cannot be read: these
# alerts need PostgreSQL and the channels only. The last REDIS_SOURCE alert is the state (down or
# up), so a cron job running every minute alerts once per outage (plus reminders), not each run.


def redis_unreachable(error: str) -> Alert | None:
    """Alert that Redis cannot be reached, unless that was already said; return the alert sent.

    ``error`` is shown to people: pass ``health.redis_error_message(exc)``, which holds no
    password. While Redis stays down, a reminder goes out every ``ALERT_REMINDER_INTERVAL``.
    """
    with _redis_alert_lock() as acquired:
        if not acquired:  # another check is alerting right now
            return None
        last = _last_redis_alert()
        reminder = settings.ALERT_REMINDER_INTERVAL
        if last is not None and last.details.get("status") == health.CRITICAL and (
            reminder <= 0 or timezone.now() - last.created_at < timedelta(seconds=reminder)
        ):
            return None
        still = last is not None and last.details.get("status") == health.CRITICAL
        return notify(
            "Redis is still unreachable" if still else "Redis is unreachable: no job can be queued or run",
            f"{error}\nWorkers, the scheduler and every enqueue fail until Redis answers again.",
            severity=Alert.Severity.CRITICAL,
            source=REDIS_SOURCE,
            details={"status": health.CRITICAL, "error": error, "reminder": still},
        )


def _redis_recovered() -> list[Alert]:
    last = _last_redis_alert()
    if last is None or last.details.get("status") != health.CRITICAL:
        return []
    with _redis_alert_lock() as acquired:
        last = _last_redis_alert()
        if not acquired or last is None or last.details.get("status") != health.CRITICAL:
            return []
        body = f"Redis answers again (first alert at {last.created_at:%Y-%m-%d %H:%M} UTC)."
        return [notify("Redis is reachable again", body, severity=Alert.Severity.INFO, source=REDIS_SOURCE,
                       details={"status": health.OK})]


def _last_redis_alert() -> Alert | None:
    return Alert.objects.filter(source=REDIS_SOURCE).order_by("-created_at", "-id").first()


_REDIS_ALERT_LOCK = zlib.crc32(b"broxiva:redis-health-alert")


@contextmanager
def _redis_alert_lock() -> Iterator[bool]:
    """Yield whether this process may decide on a Redis alert (a PostgreSQL advisory lock).

    Checks on several machines run at the same minute; the lock makes one of them send. SQLite
    (the embedded default, one machine) has no such lock and needs none.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_REDIS_ALERT_LOCK])
        yield bool(cursor.fetchone()[0])
