"""Local webhook receivers on loopback that verify every request with the reference library.

A ``Receiver`` is a threaded HTTP server (one thread per connection, as a real receiver behind a
web server would be) that checks each request with ``standardwebhooks.Webhook(secret).verify``
for every secret it was given, records what arrived and answers from a script: a list of
answers consumed in order (the last one repeats), each ``(status, headers, body)``, with an
optional ``delay`` before answering (a slow receiver, or one that times out).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

Answer = tuple[int, dict[str, str], bytes]
OK: Answer = (200, {}, b"ok")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # listen() backlog: the default 5 drops connections when a dispatcher opens dozens at once.
    request_queue_size = 512


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified_by: list[str]  # the secrets (of those given) whose verify() accepted the request
    errors: list[str]


@dataclass
class Receiver:
    secrets: list[str] | Callable[[], list[str]] = field(default_factory=list)
    script: list[Answer] = field(default_factory=lambda: [OK])
    delay: float = 0.0
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, answer = receiver._take(self.path, dict(self.headers.items()), body)
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = _Server((self.host, 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def _take(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        secrets = self.secrets() if callable(self.secrets) else list(self.secrets)
        verified, errors = [], []
        for secret in secrets:
            try:
                Webhook(secret).verify(body, headers)
                verified.append(secret)
            except WebhookVerificationError as exc:
                errors.append(str(exc))
        with self._lock:
            self.received.append(Received(path, {k.lower(): v for k, v in headers.items()}, body, verified, errors))
            index = min(len(self.received) - 1, len(self.script) - 1)
            return self.script[index]

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
