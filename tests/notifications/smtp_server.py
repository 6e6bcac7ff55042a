"""A real SMTP server on loopback (aiosmtpd) whose replies a test scripts.

``SmtpServer`` records every message it accepts (envelope and parsed message). A test can make
it refuse recipients (``rcpt_replies``), answer DATA with queued replies (``data_replies``: an
SMTP reply such as ``"451 4.3.0 try again later"``, or ``DROP`` to hang up after the body
arrived, before replying) and count DATA commands, so "sent once" is a fact about the wire.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller

DROP = "<drop the connection>"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Handler:
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    data_commands: int = 0
    # Set ``hold`` to keep every DATA waiting for its reply until it is set (a server that stalls
    # after the body arrived: the moment a worker can die mid-conversation).
    hold: threading.Event | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's name)
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.data_commands += 1
            reply = self.data_replies.pop(0) if self.data_replies else None
        while self.hold is not None and not self.hold.is_set():
            await asyncio.sleep(0.05)
        if reply == DROP:
            server.transport.close()
            return "250 never seen"
        if reply:
            return reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 queued"


class SmtpServer:
    def __init__(self) -> None:
        self.handler = Handler()
        self.port = _free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def settings(self) -> dict[str, str]:
        """Environment for a worker process that sends through this server."""
        return {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(self.port), "EMAIL_TIMEOUT": "5"}

    def stop(self) -> None:
        self.controller.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    return _free_port()



def serve(settings) -> Iterator[SmtpServer]:
    """Body of a test module's ``smtp`` fixture: a server, and EMAIL_* settings pointing at it."""
    server = SmtpServer()
    for name, value in server.settings().items():
        setattr(settings, name, int(value) if name in ("EMAIL_PORT", "EMAIL_TIMEOUT") else value)
    yield server
    server.stop()
