"""``POST /webhooks/<source>/<connection id>/``: a shop tells us a product changed.

Answers at once: 200 once the event is recorded (a ``SyncRun`` and its job, pushed after the
commit), or ignored as a duplicate or stale; 401 for a missing or wrong signature (nothing
stored or enqueued); 413 over ``PRODUCT_WEBHOOK_MAX_BYTES``; 409 while the same delivery is
being recorded by another request (the sender retries). The only CSRF-exempt view: a webhook
carries its own proof (the signature), not a browser's cookie.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from broxiva import idempotency
from broxiva.queues import enqueue
from products import webhooks
from products.models import Product, SourceConnection, SourceName, SyncRun
from products.services.runs import JOB, QUEUE, job_kwargs

logger = logging.getLogger(__name__)


def _answer(code: int, **body: object) -> JsonResponse:
    return JsonResponse(body, status=code)


@csrf_exempt
def product_webhook(request: HttpRequest, source: str, connection_id: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if source not in SourceName.values:
        return _answer(404, error="unknown source")
    cap = settings.PRODUCT_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _answer(400, error="bad Content-Length")
    if declared > cap:
        return _answer(413, error=f"body over {cap} bytes")
    body = request.read(cap + 1)  # never more than the cap in memory
    if len(body) > cap:
        return _answer(413, error=f"body over {cap} bytes")
    connection = SourceConnection.objects.filter(pk=connection_id, source=source, is_active=True).first()
    if connection is None:
        return _answer(404, error="unknown connection")
    if source == "woocommerce" and webhooks.is_woocommerce_ping(request, body):
        return _answer(200, status="ok")
    if not webhooks.verify(source, connection.webhook_secret, request, body):
        logger.warning(
            "product webhook refused: bad or missing signature source=%s connection=%s", source, connection.pk
        )
        return _answer(401, error="invalid signature")
    try:
        payload = json.loads(body)
    except ValueError:
        return _answer(400, error="the body is not JSON")
    event = webhooks.event(source, request, body, payload)
    key = ("webhook", "products", source, connection.pk, event.delivery_id)
    claim = idempotency.try_acquire_lock(key)
    if not claim.acquired:
        if claim.state == "done":
            return _answer(200, status="duplicate")
        return _answer(409, error="this delivery is being processed", retry_after=claim.retry_after)
    try:
        response = _record(connection, event, payload)
    except BaseException:
        idempotency.release(key, token=claim.token)
        raise
    idempotency.complete(key, token=claim.token)
    return response


def _record(connection: SourceConnection, event: webhooks.Event, payload: object) -> HttpResponse:
    if event.external_id and event.updated_at:
        stored = (
            Product.objects.filter(connection=connection, external_id=event.external_id)
            .values_list("source_updated_at", flat=True)
            .first()
        )
        if stored and event.updated_at < stored:
            logger.info("product webhook stale connection=%s product=%s", connection.pk, event.external_id)
            return _answer(200, status="stale")
    with transaction.atomic():
        run = SyncRun.objects.create(connection=connection, mode="delta", trigger=SyncRun.Trigger.WEBHOOK)
        enqueue(QUEUE, JOB, **job_kwargs(run, webhook_data=event.job_data(payload)))
    logger.info("product webhook accepted connection=%s topic=%s run=%s", connection.pk, event.topic, run.pk)
    return _answer(200, status="accepted", sync_id=run.pk)
