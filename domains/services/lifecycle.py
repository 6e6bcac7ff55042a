"""A domain's life: added pending, verified or failed, given a new token; and the news of it.

Every status change goes through ``transition()`` on a row the caller has locked: it records a
``TenantDomainEvent`` (the admin's history) and, for ``verified`` and ``failed``, tells the
tenant — an e-mail to its ``contact_email`` and a ``domain.verified`` / ``domain.failed``
webhook event — in the same transaction, so the news goes out exactly when the change commits
(the notifications app's outbox carries it to Redis).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import idna
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from broxiva.models import Tenant
from broxiva.queues import enqueue
from domains import checks
from domains.models import TenantDomain, TenantDomainEvent
from domains.normalize import normalize_domain

logger = logging.getLogger(__name__)

Status = TenantDomain.Status
QUEUE = "domain-verification"
JOB = "domains.jobs.domain_verify_job"
RECHECK_EVERY = timedelta(days=1)
MISSES_TO_FAIL = 3
EXPIRED_REASON = "no verification record found within {days} days"
REMOVED_REASON = "verification record removed"
ALLOWED = {
    (Status.PENDING, Status.VERIFIED), (Status.PENDING, Status.FAILED), (Status.VERIFIED, Status.FAILED),
    (Status.FAILED, Status.VERIFIED), (Status.PENDING, Status.PENDING), (Status.VERIFIED, Status.PENDING),
    (Status.FAILED, Status.PENDING),
}


def job_id_for(domain_id: int) -> str:
    """The one RQ job id a domain's check has (RQ ids cannot hold ':', hence '-')."""
    return f"domain-verify-{domain_id}"


def new_token() -> str:
    return secrets.token_urlsafe(24)  # 192 bits, URL-safe


def display_name(domain: str) -> str:
    """Return the domain as a person reads it (``xn--bcher-kva.example`` → ``bücher.example``)."""
    try:
        return idna.decode(domain)
    except (idna.IDNAError, UnicodeError):
        return domain


def expected_record(domain: TenantDomain | int) -> dict[str, str]:
    """Return exactly what the tenant must publish for the domain's method, and where."""
    row = domain if isinstance(domain, TenantDomain) else TenantDomain.objects.get(pk=domain)
    name, token = row.domain, row.token
    target = settings.DOMAIN_CNAME_TARGET.strip().rstrip(".").lower()
    if row.method == TenantDomain.Method.DNS_TXT:
        record = {"type": "TXT", "name": f"{checks.TXT_PREFIX}.{name}", "value": checks.TXT_VALUE.format(token=token),
                  "instructions": "Add a TXT record with this name and value at your DNS provider."}
    elif row.method == TenantDomain.Method.DNS_CNAME:
        record = {"type": "CNAME", "name": name, "value": target,
                  "instructions": f"Point {name} at {target} with a CNAME record. At the apex of your zone, where "
                                  "a CNAME is not allowed, use your provider's ALIAS/ANAME or CNAME flattening."}
    elif row.method == TenantDomain.Method.HTTP_FILE:
        record = {"type": "HTTP file", "name": f"http://{name}{checks.FILE_PATH}", "value": token,
                  "instructions": "Serve a text file at this URL (https or http) whose content is the value."}
    else:
        record = {"type": "HTML meta tag", "name": f"http://{name}/",
                  "value": f'<meta name="{checks.META_NAME}" content="{token}">',
                  "instructions": "Put this tag in the <head> of your home page."}
    return {"method": row.method, **record}


def add_domain(*, tenant_id: int, domain: str, method: str) -> TenantDomain:
    """Store a tenant's domain pending and enqueue its first check (after the commit).

    Raise ``ValidationError`` (nothing stored) for an invalid domain or method, an unknown
    tenant, or a domain already registered.
    """
    name = normalize_domain(domain)
    if method not in TenantDomain.Method.values:
        raise ValidationError(f"Unknown method {method!r}: use one of {', '.join(TenantDomain.Method.values)}.",
                              code="method")
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, int) or \
            not Tenant.objects.filter(pk=tenant_id).exists():
        raise ValidationError(f"No tenant with id {tenant_id!r}.", code="tenant")
    try:
        with transaction.atomic():
            row = TenantDomain.objects.create(tenant_id=tenant_id, domain=name, method=method, token=new_token(),
                                              status=Status.PENDING, next_check_at=timezone.now())
            TenantDomainEvent.objects.create(domain=row, to_status=Status.PENDING, reason="domain added")
            enqueue(QUEUE, JOB, domain_id=row.pk, job_id=job_id_for(row.pk))
    except IntegrityError:
        raise ValidationError(f"{name} is already registered.", code="duplicate") from None
    logger.info("domain added id=%s tenant=%s method=%s", row.pk, tenant_id, method)
    return row


def transition(row: TenantDomain, to: str, *, reason: str = "", actor: str = "", now: datetime | None = None) -> None:
    """Move a locked row to ``to`` (saving the fields already set on it), record it, tell the tenant.

    Call inside ``transaction.atomic()`` with ``row`` from ``select_for_update()``.
    """
    now = now or timezone.now()
    before = row.status
    if (before, to) not in ALLOWED:
        raise ValueError(f"domain {row.pk}: {before} → {to} is not a legal change")
    row.status = to
    if to == Status.VERIFIED:
        row.verified_at = now
        row.failure_reason = ""
        row.consecutive_misses = 0
        row.next_check_at = now + RECHECK_EVERY
    elif to == Status.FAILED:
        row.failure_reason = reason[:255]
    else:
        row.failure_reason = ""
        row.consecutive_misses = 0
    row.save()
    event = TenantDomainEvent.objects.create(domain=row, from_status=before, to_status=to, reason=reason[:255],
                                             actor=actor, created_at=now)
    logger.info("domain status id=%s %s->%s actor=%s", row.pk, before, to, actor or "worker")
    if to != before and to in (Status.VERIFIED, Status.FAILED):
        _notify(row, event)


def _notify(row: TenantDomain, event: TenantDomainEvent) -> None:
    from notifications.services import publish_event, queue_email

    verified = row.status == Status.VERIFIED
    payload: dict[str, Any] = {
        "domain_id": row.pk, "domain": row.domain, "method": row.method, "status": row.status,
        "verified_at": row.verified_at.isoformat() if verified and row.verified_at else None,
        "reason": "" if verified else row.failure_reason,
    }
    publish_event(tenant_id=row.tenant_id, event_type=f"domain.{row.status}", payload=payload,
                  key=f"domain-event-{event.pk}")
    tenant = Tenant.objects.only("name", "contact_email").get(pk=row.tenant_id)
    if not tenant.contact_email:
        logger.warning("domain %s id=%s: tenant %s has no contact e-mail", row.status, row.pk, row.tenant_id)
        return
    try:
        queue_email(to=tenant.contact_email, template=f"domain-{row.status}", tenant_id=row.tenant_id,
                    key=f"domain-event-{event.pk}",
                    context={"tenant_name": tenant.name, "domain": display_name(row.domain),
                             "reason": row.failure_reason, "method": row.get_method_display()})
    except ValueError as exc:  # an invalid stored address must not undo the status change
        logger.warning("domain %s id=%s: no e-mail to tenant %s (%s)", row.status, row.pk, row.tenant_id, exc)


def regenerate_token(domain_id: int, *, actor: str = "") -> TenantDomain:
    """Give the domain a new token and put it back to pending, checked from now on."""
    with transaction.atomic():
        row = TenantDomain.objects.select_for_update().get(pk=domain_id)
        row.token = new_token()
        row.checks = 0
        row.verified_at = None
        row.created_at = timezone.now()  # the expiry window starts again with the new token
        row.next_check_at = timezone.now()
        row.last_check = {}
        transition(row, Status.PENDING, reason="token regenerated", actor=actor)
    # After the commit, through the one-job-per-domain door; if Redis is down the row (due now)
    # is picked up by the next sweep.
    from domains.services.verify import request_check

    try:
        request_check(row.pk, at_front=False)
    except RedisError as exc:
        logger.warning("domain id=%s: check not enqueued (%s); the sweep will", row.pk, exc.__class__.__name__)
    return row


def mark_failed(domain_id: int, *, reason: str = "marked failed by staff", actor: str = "") -> bool:
    """Fail a domain by hand; return False if it had already failed."""
    with transaction.atomic():
        row = TenantDomain.objects.select_for_update().get(pk=domain_id)
        if row.status == Status.FAILED:
            return False
        transition(row, Status.FAILED, reason=reason, actor=actor)
    return True
