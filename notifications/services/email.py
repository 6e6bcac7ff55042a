"""E-mail: ``queue_email`` records and enqueues, ``email_send`` sends a row at most once.

Rendering happens in ``queue_email`` (not in the job): an unknown or broken template is a
``ValueError`` at the call, before anything is stored; the row holds exactly the subject and
bodies that go out (what an operator reads in the admin is what was sent); and the job's
payload is only the row's id, so no template context (model instances, tokens) has to be
serialised into Redis.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template import Context, TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template

from broxiva.models import Tenant
from broxiva.queues import enqueue
from notifications.errors import EmailSendError, EmailSendFailed
from notifications.models import OutboundEmail, SendStatus
from notifications.providers import smtp
from notifications.services import _sends

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 50
_TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
TEMPLATE_DIR = "notifications/email/{name}/{part}"


def queue_email(
    *,
    to: str | Iterable[str],
    subject: str | None = None,
    text: str | None = None,
    html: str | None = None,
    template: str | None = None,
    context: Mapping[str, Any] | None = None,
    tenant_id: int | None = None,
    key: str | None = None,
) -> int:
    """Record an e-mail and enqueue its send after the transaction commits; return the row's id.

    ``to`` is one address or a list. Give either ``subject`` + ``text`` (+ ``html``) or a
    ``template`` rendered from ``notifications/email/<template>/subject.txt``, ``body.txt`` and
    optional ``body.html`` with ``context``. The same ``key`` for the same tenant returns the
    existing row's id and sends nothing more. Raise ``ValueError`` (nothing stored) for no or an
    invalid recipient, an unknown template, neither template nor subject, or an unknown tenant.
    """
    recipients = _recipients(to)
    if key is not None and (not isinstance(key, str) or not key.strip() or len(key) > 255):
        raise ValueError("key must be a non-empty string of at most 255 characters")
    if tenant_id is not None:
        if isinstance(tenant_id, bool) or not isinstance(tenant_id, int):
            raise ValueError(f"tenant_id must be an integer, not {type(tenant_id).__name__}")
        if not Tenant.objects.filter(pk=tenant_id).exists():
            raise ValueError(f"no tenant with id {tenant_id}")
    if template is not None:
        if subject is not None or text is not None or html is not None:
            raise ValueError("give either a template (with context) or subject + text, not both")
        subject, text, html = render_template(template, context or {})
    else:
        if context is not None:
            raise ValueError("context is only used with a template")
        if subject is None:
            raise ValueError("give a template, or a subject and a text body")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("an e-mail with a subject needs a non-empty text body")
        if html is not None and not isinstance(html, str):
            raise ValueError("html must be a string")
    subject = _subject(subject)

    if key is not None:
        existing = OutboundEmail.objects.filter(tenant_id=tenant_id, key=key).values_list("id", flat=True).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            email = OutboundEmail.objects.create(
                tenant_id=tenant_id, key=key, to=recipients, from_email=settings.DEFAULT_FROM_EMAIL,
                subject=subject, text=text, html=html or "", template=template or "",
                message_id=make_msgid(domain=_msgid_domain()), job_id=uuid.uuid4().hex,
            )
            # Inside atomic(): written to the outbox in this transaction, pushed after the commit.
            enqueue("email", "notifications.jobs.email.email_send_job", email_id=email.pk, job_id=email.job_id)
    except IntegrityError:
        # A concurrent call with the same key won the insert: return its row.
        if key is None:
            raise
        return OutboundEmail.objects.get(tenant_id=tenant_id, key=key).pk
    logger.info("email queued id=%s tenant=%s template=%s recipients=%d", email.pk, tenant_id, template or "-",
                len(recipients))
    return email.pk


def render_template(name: str, context: Mapping[str, Any]) -> tuple[str, str, str]:
    """Return ``(subject, text, html)`` rendered from a template; ``html`` is "" without body.html.

    The ``.txt`` parts are rendered with autoescaping off (plain text must not show ``&amp;``);
    ``body.html`` is escaped as any HTML template.
    """
    if not isinstance(name, str) or not _TEMPLATE_NAME.match(name):
        raise ValueError(f"invalid template name {name!r}: lowercase letters, digits, - and _")
    if not isinstance(context, Mapping):
        raise ValueError("context must be a mapping")
    try:
        subject = _render(TEMPLATE_DIR.format(name=name, part="subject.txt"), context, autoescape=False)
        text = _render(TEMPLATE_DIR.format(name=name, part="body.txt"), context, autoescape=False)
    except TemplateDoesNotExist as exc:
        raise ValueError(f"unknown e-mail template {name!r} ({exc} not found)") from None
    try:
        html = _render(TEMPLATE_DIR.format(name=name, part="body.html"), context, autoescape=True)
    except TemplateDoesNotExist:
        html = ""
    if not text.strip():
        raise ValueError(f"e-mail template {name!r} rendered an empty text body")
    return subject, text, html


def _render(path: str, context: Mapping[str, Any], *, autoescape: bool) -> str:
    try:
        template = get_template(path)
        inner = getattr(template, "template", None)  # Django's engine: render with our autoescape choice
        if inner is not None:
            return inner.render(Context(dict(context), autoescape=autoescape))
        return template.render(dict(context))
    except TemplateSyntaxError as exc:
        raise ValueError(f"e-mail template {path} is broken: {exc}") from None


def _recipients(to: str | Iterable[str]) -> list[str]:
    if isinstance(to, str):
        to = [to]
    elif not isinstance(to, (list, tuple)):
        raise ValueError("to must be an address or a list of addresses")
    result: list[str] = []
    for address in to:
        if not isinstance(address, str):
            raise ValueError(f"recipient {address!r} is not a string")
        address = address.strip()
        try:
            validate_email(address)
        except ValidationError:
            raise ValueError(f"invalid e-mail address {address!r}") from None
        if address.lower() not in (a.lower() for a in result):
            result.append(address)
    if not result:
        raise ValueError("an e-mail needs at least one recipient")
    if len(result) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} recipients per e-mail")
    return result


def _subject(subject: object) -> str:
    if not isinstance(subject, str):
        raise ValueError("subject must be a string")
    # One line: a template's trailing newline is fine, a header injection is not.
    subject = " ".join(subject.split())
    if not subject:
        raise ValueError("the subject is empty")
    if len(subject) > 998:
        raise ValueError("the subject is longer than 998 characters")
    return subject


def _msgid_domain() -> str:
    address = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("> ")
    return address or "localhost"


# --- Sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendOutcome:
    id: int
    status: str
    skipped: bool = False
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"id": self.id, "status": str(self.status)}
        if self.skipped:
            result["skipped"] = True
        if self.note:
            result["note"] = self.note
        return result


def email_send(*, email_id: int, final_attempt: bool) -> SendOutcome:
    """Send a queued e-mail at most once and record the outcome on its row.

    A row that is not ``queued`` (being sent, sent, failed, or gone) is left alone: that is a
    duplicate or retried job. ``final_attempt``: no retry will follow, so a transient failure
    fails the row instead of putting it back to ``queued``. Raise ``EmailSendFailed`` (with the
    failure's ``transient``) when the e-mail was not sent.
    """
    if not _sends.claim(OutboundEmail, email_id):
        status = OutboundEmail.objects.filter(pk=email_id).values_list("status", flat=True).first()
        logger.info("email id=%s not sent by this job: it is %s", email_id, status or "missing")
        return SendOutcome(email_id, status or "missing", skipped=True)
    email = OutboundEmail.objects.get(pk=email_id)
    try:
        report = smtp.send(build_message(email))
    except EmailSendError as exc:
        if exc.transient and not final_attempt:
            _sends.release(OutboundEmail, email_id, error=exc.message)
            logger.warning("email id=%s attempt %d failed, will retry: %s", email_id, email.attempts, exc.message)
        else:
            reason = exc.message if not exc.transient else f"{exc.message} (no attempts left)"
            _sends.mark_failed(OutboundEmail, email_id, error=reason)
            logger.warning("email id=%s failed: %s", email_id, reason)
        raise EmailSendFailed(email_id, exc.message, transient=exc.transient) from None
    note = "; ".join(f"refused {addr}: {reply}" for addr, reply in report.refused.items())
    _sends.mark_sent(OutboundEmail, email_id, note=note)
    logger.info("email sent id=%s attempt=%d%s", email_id, email.attempts, f" ({note})" if note else "")
    return SendOutcome(email_id, SendStatus.SENT, note=note)


def build_message(email: OutboundEmail) -> EmailMultiAlternatives:
    """Return the message for a row: multipart/alternative when it has HTML."""
    message = EmailMultiAlternatives(
        subject=email.subject, body=email.text, from_email=email.from_email, to=list(email.to),
        headers={"Message-ID": email.message_id, "X-Broxiva-Email-Id": str(email.pk)},
    )
    if email.html:
        message.attach_alternative(email.html, "text/html")
    return message


def fail_stale_emails(*, older_than: timedelta | None = None) -> int:
    """Fail e-mails left ``sending`` by a worker that died mid-conversation (never re-sent)."""
    if older_than is None:
        older_than = timedelta(minutes=settings.NOTIFICATIONS_STALE_SENDING_MINUTES)
    return _sends.fail_stale(OutboundEmail, older_than=older_than, what="the SMTP conversation")
