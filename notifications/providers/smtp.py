"""Sending one message through Django's e-mail backend, with SMTP failures sorted for retry.

Django's SMTP backend raises smtplib's exceptions as they come. What we need to know is not
only "failed" but *where*: a 4xx reply or a connection that broke before the message body went
out is safe to retry; a 5xx is permanent; a connection that broke after the body started may
have delivered the message, and at most once means it is never sent again automatically. So
when ``EMAIL_BACKEND`` is Django's SMTP backend we use a subclass of it whose smtplib session
remembers whether DATA started and whether the server accepted the message (a few lines, rather
than a second SMTP client). Any other backend (console, locmem, file, a vendor's) is used as
configured; its exceptions count as transient unless they say ``transient = False``.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend

from notifications.errors import EmailSendError

logger = logging.getLogger(__name__)

DJANGO_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class _TrackedSession:
    """Mixin for ``smtplib.SMTP``: remember whether DATA started and whether it was accepted."""

    data_started = False
    accepted = False
    refused: dict[str, tuple[int, bytes]]

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.data_started = True
        code, reply = super().data(msg)  # type: ignore[misc]
        self.accepted = code == 250  # sendmail() raises SMTPDataError for any other final reply
        return code, reply

    def sendmail(self, *args: Any, **kwargs: Any) -> dict[str, tuple[int, bytes]]:
        # smtplib returns the recipients it refused when it accepted others; Django drops that.
        self.refused = super().sendmail(*args, **kwargs)  # type: ignore[misc]
        return self.refused


class TrackedSMTP(_TrackedSession, smtplib.SMTP):
    pass


class TrackedSMTPSSL(_TrackedSession, smtplib.SMTP_SSL):
    pass


class TrackedSMTPBackend(DjangoSMTPBackend):
    """Django's SMTP backend whose session is kept after the send (``last_session``)."""

    last_session: _TrackedSession | None = None

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return TrackedSMTPSSL if self.use_ssl else TrackedSMTP

    def _send(self, email_message: EmailMessage) -> bool:
        self.last_session = self.connection
        return super()._send(email_message)


@dataclass
class SendReport:
    """What the server said: ``refused`` lists recipients refused while others were accepted."""

    refused: dict[str, str] = field(default_factory=dict)


def send(message: EmailMessage) -> SendReport:
    """Send one message through ``EMAIL_BACKEND``; raise ``EmailSendError`` sorted for retry."""
    path = settings.EMAIL_BACKEND
    backend = get_connection(TrackedSMTPBackend.__module__ + ".TrackedSMTPBackend" if path == DJANGO_SMTP_BACKEND
                             else path, fail_silently=False)
    try:
        sent = backend.send_messages([message])
    except Exception as exc:
        session = getattr(backend, "last_session", None)
        if session is not None and session.accepted:
            # The server took the message; what failed came after (QUIT). It is sent.
            logger.warning("smtp error after the message was accepted: %s", _describe(exc))
            return _report(session)
        raise _classify(exc, session) from None
    if not sent:
        raise EmailSendError("the e-mail backend sent nothing (no recipient?)", transient=False)
    session = getattr(backend, "last_session", None)
    return _report(session) if session is not None else SendReport()


def _report(session: _TrackedSession) -> SendReport:
    refused = getattr(session, "refused", None) or {}
    return SendReport(refused={addr: _reply(code, text) for addr, (code, text) in refused.items()})


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}".strip()


def _describe(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


def _classify(exc: Exception, session: _TrackedSession | None) -> EmailSendError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = [(code, _reply(code, text), addr) for addr, (code, text) in exc.recipients.items()]
        # Nobody was accepted, so nothing went out: retrying is safe while any refusal is temporary.
        transient = any(400 <= code < 500 for code, _, _ in replies)
        detail = "; ".join(f"{reply} ({addr})" for _, reply, addr in replies)
        return EmailSendError(f"every recipient refused: {detail}", transient=transient)
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        return EmailSendError(_reply(code, exc.smtp_error), transient=400 <= code < 500)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return EmailSendError(f"TLS certificate check failed: {exc.verify_message}", transient=False)
    # smtplib's exceptions are OSErrors too: only a disconnect or a socket error is about the connection.
    if isinstance(exc, smtplib.SMTPServerDisconnected) or (
        isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)
    ):
        if session is not None and session.data_started:
            return EmailSendError(
                f"outcome unknown: the connection broke while the message was being transmitted ({_describe(exc)})",
                transient=False, outcome_unknown=True)
        return EmailSendError(f"could not reach or talk to the mail server: {_describe(exc)}", transient=True)
    if isinstance(exc, smtplib.SMTPException):
        return EmailSendError(f"SMTP error: {_describe(exc)}", transient=False)
    if session is not None and session.data_started:  # e.g. the job's timeout struck mid-DATA
        return EmailSendError(f"outcome unknown: the send was interrupted while the message was being transmitted "
                              f"({_describe(exc)})", transient=False, outcome_unknown=True)
    transient = getattr(exc, "transient", True) is not False
    return EmailSendError(f"e-mail backend error: {_describe(exc)}", transient=transient)
