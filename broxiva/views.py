"""Operator endpoints: liveness, queue health and Prometheus metrics, and the Operations page.

Access (docs/operations.md):
- ``/health/`` and ``/health/live`` are open: they say only whether the database and Redis
  answer, which is what a load balancer needs, and load balancers rarely send credentials.
- ``/health/queues`` and ``/health/queue/<name>`` need ``Authorization: Bearer <HEALTH_TOKEN>``
  or a staff session when ``HEALTH_TOKEN`` is set, and are open when it is not.
- ``/metrics`` needs ``Authorization: Bearer <METRICS_TOKEN>`` (default: ``HEALTH_TOKEN``) or a
  staff session; with neither token set, only staff can read it.

A critical queue makes the health endpoints answer 503 (uptime checkers read the status code).
So does an unreachable Redis, on the queue endpoints and ``/metrics`` alike: a JSON body that
says so (``{"status": "critical", "error": "Redis is unreachable: …"}``), never a 500 page.
"""

from __future__ import annotations

import logging
from secrets import compare_digest
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from redis.exceptions import RedisError

from broxiva import health
from broxiva.queues import PRIORITY_ORDER, UnknownQueue, rq_name

logger = logging.getLogger(__name__)


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _authorized(request: HttpRequest, token: str, *, open_without_token: bool) -> bool:
    given = _bearer(request)
    if token and given is not None and compare_digest(given.encode(), token.encode()):
        return True
    if not token and open_without_token:
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def _denied() -> JsonResponse:
    response = JsonResponse({"error": "authentication required: send Authorization: Bearer <token>"}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="broxiva"'
    return response


def _health_response(payload: dict[str, Any], status: str) -> JsonResponse:
    return JsonResponse(payload, status=503 if status == health.CRITICAL else 200)


def _redis_down(request: HttpRequest, exc: RedisError) -> JsonResponse:
    message = health.redis_error_message(exc)
    logger.warning("%s %s: %s", request.method, request.path, message)
    return JsonResponse({"status": health.CRITICAL, "error": message}, status=503)


@never_cache
@require_safe
def live(request: HttpRequest) -> JsonResponse:
    ok, checks = health.liveness()
    return JsonResponse({"status": "ok" if ok else "error", "checks": checks}, status=200 if ok else 503)


@never_cache
@require_safe
def queues(request: HttpRequest) -> JsonResponse:
    if not _authorized(request, settings.HEALTH_TOKEN, open_without_token=True):
        return _denied()
    try:
        report = health.queues_health()
    except RedisError as exc:
        return _redis_down(request, exc)
    return _health_response(report, report["status"])


@never_cache
@require_safe
def queue(request: HttpRequest, name: str) -> JsonResponse:
    if not _authorized(request, settings.HEALTH_TOKEN, open_without_token=True):
        return _denied()
    try:
        report = health.queue_health(name)
    except UnknownQueue:
        return JsonResponse({"error": f"unknown queue {name!r}", "queues": list(PRIORITY_ORDER)}, status=404)
    except RedisError as exc:
        return _redis_down(request, exc)
    return _health_response(report, report["status"])


# --- Prometheus -------------------------------------------------------------------------------

_STATUS_VALUE = {health.OK: 0, health.WARNING: 1, health.CRITICAL: 2}


class QueueCollector:
    """The queues as Prometheus families, from one health report per scrape.

    django-rq's ``RQCollector`` exports the same ``rq_*`` families, but it counts registries with
    RQ's ``.count``, which runs the registry clean-ups: every scrape would hand abandoned jobs to
    their retry policy outside the workers' maintenance lock (a race that can retry a job twice).
    Here every count comes from the health report (no clean-up, two round trips) and the worker
    families from the worker registry, under django-rq's metric names.
    """

    def collect(self):
        report = health.queues_health()
        yield from _health_families(report)
        yield from _rq_families(report)


_RQ_JOB_STATES = {"waiting": "queued", "active": "started", "finished": "finished", "failed": "failed",
                  "deferred": "deferred", "scheduled": "scheduled"}


def _rq_families(report: dict):
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from rq import Worker

    workers = GaugeMetricFamily("rq_workers", "RQ workers", labels=["name", "state", "queues"])
    successful = CounterMetricFamily("rq_job_successful_total", "RQ successful job count", labels=["name", "queues"])
    failed = CounterMetricFamily("rq_job_failed_total", "RQ failed job count", labels=["name", "queues"])
    working = CounterMetricFamily("rq_working_seconds_total", "RQ total working time", labels=["name", "queues"])
    for worker in Worker.all(connection=health.connection()):
        queues = ",".join(worker.queue_names())
        workers.add_metric([worker.name, worker.get_state(), queues], 1)
        successful.add_metric([worker.name, queues], worker.successful_job_count)
        failed.add_metric([worker.name, queues], worker.failed_job_count)
        working.add_metric([worker.name, queues], worker.total_working_time)
    jobs = GaugeMetricFamily("rq_jobs", "RQ jobs by status", labels=["queue", "status"])
    for name, data in report["queues"].items():
        for field, state in _RQ_JOB_STATES.items():
            jobs.add_metric([rq_name(name), state], data[field])
    yield from (workers, successful, failed, working, jobs)


def _health_families(report: dict):
    from prometheus_client.core import GaugeMetricFamily

    families = {
        "waiting": GaugeMetricFamily("broxiva_queue_waiting_jobs", "Jobs waiting in the queue", labels=["queue"]),
        "active": GaugeMetricFamily("broxiva_queue_active_jobs", "Jobs being executed", labels=["queue"]),
        "failed": GaugeMetricFamily("broxiva_queue_failed_jobs", "Jobs in the failed registry", labels=["queue"]),
        "scheduled": GaugeMetricFamily(
            "broxiva_queue_scheduled_jobs", "Jobs scheduled (retries with backoff included)", labels=["queue"]
        ),
        "workers": GaugeMetricFamily("broxiva_queue_workers", "Live workers listening", labels=["queue"]),
        "oldestWaitingAgeSeconds": GaugeMetricFamily(
            "broxiva_queue_oldest_waiting_age_seconds", "Age of the oldest waiting job (0: none)", labels=["queue"]
        ),
    }
    status = GaugeMetricFamily(
        "broxiva_queue_status", "Queue health: 0 ok, 1 warning, 2 critical", labels=["queue"]
    )
    for name, data in report["queues"].items():
        for field, family in families.items():
            family.add_metric([name], data[field] or 0)
        status.add_metric([name], _STATUS_VALUE[data["status"]])
    yield from families.values()
    yield status


_registry = None


def _metrics_registry():
    global _registry
    if _registry is None:
        from prometheus_client import CollectorRegistry

        # auto_describe=False: describing would run a full collection at registration time.
        registry = CollectorRegistry(auto_describe=False)
        registry.register(QueueCollector())
        _registry = registry
    return _registry


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """django-rq's Prometheus families (workers, jobs by status) plus the health gauges."""
    if not _authorized(request, settings.METRICS_TOKEN, open_without_token=False):
        return _denied()
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    try:
        body = encoder(_metrics_registry())  # the collectors read Redis here
    except RedisError as exc:
        # A 503 makes Prometheus record the scrape as failed (up == 0), which alerting rules see.
        return _redis_down(request, exc)
    return HttpResponse(body, content_type=content_type)


# --- The Operations page (admin) --------------------------------------------------------------

RECENT_ALERTS = 10


def _age(seconds: float | None) -> str:
    """Return an age for people: "—", "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h"."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _queue_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's queues in priority order, each with its dashboard links."""
    from django.urls import reverse
    from django_rq.settings import get_queues_map

    index = get_queues_map()  # django-rq numbers queues by their sorted RQ names
    rows = []
    for name, data in report["queues"].items():
        position = index.get(rq_name(name))
        links = {}
        if position is not None:
            links = {
                "queue_url": reverse("django_rq:jobs", args=[position]),
                "failed_url": reverse("django_rq:failed_jobs", args=[position]),
                "started_url": reverse("django_rq:started_jobs", args=[position]),
                "scheduled_url": reverse("django_rq:scheduled_jobs", args=[position]),
            }
        rows.append({"name": name, **data, "oldest": _age(data["oldestWaitingAgeSeconds"]), **links})
    return rows


def operations(request: HttpRequest) -> HttpResponse:
    """The health report as a page an operator reads: every queue, the workers, the outbox, the last alerts.

    For operators (``broxiva.dashboard.operator_required``, the dashboard's own gate), since its
    links lead into the dashboard. It reads Redis the way ``/health/queues`` does (two round trips,
    no registry clean-up), so reloading it often costs nothing; the JSON endpoints stay for machines.
    An unreachable Redis gives the dashboard's "Redis is unreachable" page (503), not a 500.
    """
    from django.contrib import admin
    from django.shortcuts import render

    from broxiva.models import Alert

    report = health.queues_health()  # RedisError → the operator gate's 503 page
    outbox = report.get("outbox", {})
    context = {
        **admin.site.each_context(request),
        "title": "Operations",
        "report": report,
        "queues": _queue_rows(report),
        "outbox": {**outbox, "oldest": _age(outbox.get("oldestAgeSeconds"))},
        "workers": [{**w, "heartbeat": _age(w["heartbeatAgeSeconds"])} for w in health.workers()],
        "alerts": list(Alert.objects.order_by("-created_at", "-id")[:RECENT_ALERTS]),
        "refresh_seconds": 30,
    }
    # 200 whatever the status: this page is read by people (the JSON endpoints answer 503 for machines).
    return render(request, "admin/operations.html", context)
