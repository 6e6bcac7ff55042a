"""A raw-socket HTTP/1.1 server on loopback, for what pytest-httpserver cannot do: drip bytes.

Each accepted connection gets its request read (head and ``Content-Length`` body) and then
``answer(request)`` is written as a list of byte pieces, ``pause`` seconds apart. Every
accepted connection is counted, so a test can prove that a refused call never connected.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RawServer:
    answer: Callable[[Request], list[bytes]]
    host: str = "127.0.0.1"
    pause: float = 0.0
    tls: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    accepted: int = 0
    completed: int = 0  # answers written to the end (a client that gave up early stops the writing)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._listener = socket.create_server((self.host, 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"{'https' if self.tls else 'http'}://{host or self.host}:{self.port}{path}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                request = _read_request(conn)
                self.requests.append(request)
                for index, piece in enumerate(self.answer(request)):
                    if index and self._stop.wait(self.pause):
                        return
                    conn.sendall(piece)
                self.completed += 1
            except OSError:  # the client hung up (what a deadline does)
                return


def _read_request(conn: socket.socket) -> Request:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ") + ["", "", ""])[:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            break
        body += chunk
    return Request(method=method, target=target, headers=headers, body=body)


def response(body: bytes | str = b"", *, status: str = "200 OK", content_type: str = "text/plain",
             headers: dict[str, str] | None = None) -> bytes:
    """Return a whole HTTP/1.1 response (with Content-Length, connection closed after it)."""
    data = body.encode() if isinstance(body, str) else body
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", f"Content-Length: {len(data)}",
             "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def drip(whole: bytes, *, size: int, start: int | None = None) -> list[bytes]:
    """Split ``whole`` into its first ``start`` bytes (default: the head), then pieces of ``size`` bytes."""
    start = whole.index(b"\r\n\r\n") + 4 if start is None else start
    return [whole[:start]] + [whole[i:i + size] for i in range(start, len(whole), size)]


def redirect(location: str, status: str = "302 Found") -> Callable[[Request], list[bytes]]:
    return lambda request: [response(status=status, headers={"Location": location})]
