"""A local authoritative DNS server (dnslib wire format) on 127.0.0.1, UDP and TCP on one port.

The zone is a dict the test changes while the server runs (``set``/``add``/``remove``). Names
can be made to answer SERVFAIL or stay silent (``fail``), every answer can be delayed
(``delay_ms``, without holding up other queries: a scheduler thread sends them when due), and
each question asked is counted (``asked``). CNAMEs are followed inside the zone as an
authoritative server does, so an A question for an alias gets the chain and the addresses.
"""

from __future__ import annotations

import heapq
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable

from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, TXT, A, DNSRecord

_RDATA = {"A": A, "AAAA": AAAA, "CNAME": CNAME}


def _key(name: str) -> str:
    return name.rstrip(".").lower()


class DnsServer:
    def __init__(self, *, delay_ms: float = 0, ttl: int = 60) -> None:
        self.records: dict[tuple[str, str], list[object]] = {}
        self.failing: dict[str, str] = {}  # name → "servfail" | "silent"; "*" for every name
        self.delay_ms = delay_ms
        self.ttl = ttl
        self.asked: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._udp, self._tcp = self._bind()
        self.port = self._udp.getsockname()[1]
        self._due: list[tuple[float, int, bytes, object]] = []
        self._due_cv = threading.Condition()
        self._seq = 0
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._serve_udp, self._serve_tcp,
                                                                              self._send_due)]
        for t in self._threads:
            t.start()

    # --- zone --------------------------------------------------------------------------------

    def set(self, name: str, rtype: str, values: Iterable[object]) -> None:
        """Replace ``name``'s ``rtype`` records. A TXT value may be a list of strings (one split record)."""
        with self._lock:
            self.records[(_key(name), rtype)] = list(values)

    def add(self, name: str, rtype: str, value: object) -> None:
        with self._lock:
            self.records.setdefault((_key(name), rtype), []).append(value)

    def remove(self, name: str, rtype: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self.records if k[0] == _key(name) and rtype in (None, k[1])]:
                del self.records[key]

    def fail(self, name: str, how: str | None) -> None:
        """Make ``name`` ("*": every name) answer SERVFAIL ("servfail"), not at all ("silent") or normally (None)."""
        with self._lock:
            if how is None:
                self.failing.pop(_key(name) if name != "*" else "*", None)
            else:
                self.failing[_key(name) if name != "*" else "*"] = how

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def settings(self) -> dict[str, str]:
        return {"DNS_NAMESERVERS": self.address}

    # --- answering ---------------------------------------------------------------------------

    def answer(self, data: bytes) -> bytes | None:
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return None
        reply = request.reply()  # aa=1, ra=1
        qname = _key(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.asked[(qname, qtype)] += 1
            how = self.failing.get(qname) or self.failing.get("*")
            if how == "silent":
                return None
            if how == "servfail":
                reply.header.rcode = RCODE.SERVFAIL
                return reply.pack()
            name = qname
            for _ in range(10):
                found = self.records.get((name, qtype))
                if found:
                    for value in found:
                        reply.add_answer(self._rr(name, qtype, value))
                    break
                alias = self.records.get((name, "CNAME"))
                if not alias or qtype == "CNAME":
                    break
                reply.add_answer(self._rr(name, "CNAME", alias[0]))
                name = _key(str(alias[0]))
            if not reply.rr and not any(k[0] == qname for k in self.records):
                reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()

    def _rr(self, name: str, rtype: str, value: object) -> RR:
        if rtype == "TXT":
            strings = value if isinstance(value, (list, tuple)) else [value]
            rdata = TXT([s.encode() if isinstance(s, str) else s for s in strings])
        else:
            rdata = _RDATA[rtype](value)
        return RR(name + ".", getattr(QTYPE, rtype), rdata=rdata, ttl=self.ttl)

    # --- sockets -----------------------------------------------------------------------------

    @staticmethod
    def _bind() -> tuple[socket.socket, socket.socket]:
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(64)
            udp.settimeout(0.2)
            tcp.settimeout(0.2)
            return udp, tcp
        raise RuntimeError("no free port for UDP and TCP at once")

    def _later(self, payload: bytes, reply_to: object) -> None:
        with self._due_cv:
            self._seq += 1
            heapq.heappush(self._due, (time.monotonic() + self.delay_ms / 1000, self._seq, payload, reply_to))
            self._due_cv.notify()

    def _send_due(self) -> None:
        while not self._stop.is_set():
            with self._due_cv:
                if not self._due:
                    self._due_cv.wait(0.2)
                    continue
                at, _, payload, reply_to = self._due[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._due_cv.wait(wait)
                    continue
                heapq.heappop(self._due)
            self._deliver(payload, reply_to)

    def _deliver(self, payload: bytes, reply_to: object) -> None:
        try:
            if isinstance(reply_to, socket.socket):
                reply_to.sendall(struct.pack("!H", len(payload)) + payload)
                reply_to.close()
            else:
                self._udp.sendto(payload, reply_to)
        except OSError:
            pass

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            payload = self.answer(data)
            if payload is not None:
                self._later(payload, peer) if self.delay_ms else self._deliver(payload, peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle_tcp, args=(conn,), daemon=True).start()

    def _handle_tcp(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            size = struct.unpack("!H", _recv(conn, 2))[0]
            payload = self.answer(_recv(conn, size))
        except (OSError, struct.error):
            conn.close()
            return
        if payload is None:
            return  # silent: leave the connection hanging until the client gives up
        self._later(payload, conn) if self.delay_ms else self._deliver(payload, conn)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        self._udp.close()
        self._tcp.close()

    def __enter__(self) -> DnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _recv(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data
