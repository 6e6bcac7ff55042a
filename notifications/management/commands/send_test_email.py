"""``manage.py send_test_email ADDRESS``: prove the e-mail configuration works, end to end."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.errors import EmailSendFailed
from notifications.models import OutboundEmail
from notifications.services import queue_email
from notifications.services.email import email_send


class Command(BaseCommand):
    help = ("Queue the test-message e-mail to ADDRESS and send it now through EMAIL_BACKEND (not via a worker), "
            "printing the server's answer. --queue-only leaves it to the email queue's workers instead.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address")
        parser.add_argument("--queue-only", action="store_true", help="only queue it; a worker sends it")

    def handle(self, *args: Any, address: str, queue_only: bool, **options: Any) -> None:
        try:
            email_id = queue_email(to=address, template="test-message", context={"name": address})
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if queue_only:
            self.stdout.write(f"e-mail {email_id} queued on the email queue")
            return
        backend = settings.EMAIL_BACKEND.rsplit(".", 2)[-2]
        try:
            # The job queued above finds the row sent (or failed) and does nothing.
            email_send(email_id=email_id, final_attempt=True)
        except EmailSendFailed as exc:
            raise CommandError(f"e-mail {email_id} not sent through {backend}: {exc.reason}") from None
        note = OutboundEmail.objects.get(pk=email_id).last_error
        self.stdout.write(self.style.SUCCESS(f"e-mail {email_id} sent to {address} through {backend}"
                                             + (f" ({note})" if note else "")))
