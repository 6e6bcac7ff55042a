"""IndexNow announcement of a generation's changed URLs, with the per-tenant watermark.

The watermark is ``SitemapGeneration.announced_until``: the latest one of the tenant says up to
when changes were announced. A generation sends the URLs whose lastmod is after it (all of them
the first time), in requests of at most 10,000. All accepted, or refused for good (400/403/422:
resending cannot help), moves the watermark to the generation's start; a 429 or an unreachable
endpoint leaves it where it was, so those URLs are sent again by the next announcement (the
batches already accepted then go again too: IndexNow takes a repeat without harm).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Max

from seo.models import SitemapGeneration
from seo.providers import indexnow

logger = logging.getLogger(__name__)
IndexNow = SitemapGeneration.IndexNow


def watermark(tenant_id: int) -> dt.datetime | None:
    """Return when the tenant's changes were last announced up to, or None if never."""
    found = SitemapGeneration.objects.filter(tenant_id=tenant_id).aggregate(last=Max("announced_until"))["last"]
    return found


def _batches(path: str, size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            batch.append(line.rstrip("\n"))
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def announce(generation: SitemapGeneration, *, changed_path: str, changed: int) -> None:
    """Submit the URLs listed in ``changed_path`` (one a line) and record the outcome on ``generation``."""
    key = settings.INDEXNOW_KEY
    if not key:
        generation.indexnow_status = IndexNow.SKIPPED
        generation.indexnow_error = "INDEXNOW_KEY is not set"
        return
    if not changed:
        generation.indexnow_status = IndexNow.NOTHING
        generation.announced_until = generation.started_at
        return
    submitted = pending = 0
    errors: list[str] = []
    last_status: int | None = None
    rejected = False
    for batch in _batches(changed_path, indexnow.MAX_URLS):
        if pending:  # an earlier batch was told to wait: keep the rest for later too
            pending += len(batch)
            continue
        result = indexnow.submit(host=generation.host, key=key, urls=batch)
        last_status = result.status
        if result.accepted:
            submitted += len(batch)
        elif result.permanent:
            rejected = True
            errors.append(result.reason)
        else:
            pending += len(batch)
            errors.append(result.reason)
    generation.indexnow_submitted = submitted
    generation.indexnow_pending = pending
    generation.indexnow_http_status = last_status
    generation.indexnow_error = "; ".join(errors)[:2000]
    if pending:
        generation.indexnow_status = IndexNow.PENDING
    elif rejected:
        generation.indexnow_status = IndexNow.REJECTED
    else:
        generation.indexnow_status = IndexNow.SUBMITTED
    if not pending:
        generation.announced_until = generation.started_at
    logger.info(
        "indexnow tenant=%s generation=%s status=%s submitted=%d pending=%d",
        generation.tenant_id, generation.pk, generation.indexnow_status, submitted, pending,
    )
