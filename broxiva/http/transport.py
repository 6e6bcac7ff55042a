"""How broxiva.http talks to servers: requests' adapters with a deadline watchdog, and pinning.

A socket timeout bounds each recv(), not the call: a server dripping a byte a second keeps
every recv() short and the call alive for ever. So each call has a watchdog timer
(``Deadline``) that, at the deadline, shuts the connection's socket down: whatever recv() is
blocked (status line, headers or body; plain or TLS) returns at once, and the call raises
``Timeout``. This covers the headers phase too, which happens inside http.client where we
cannot shrink timeouts per read; our connection classes hand their socket to the watchdog.
"""

from __future__ import annotations

import http.cookiejar
import os
import socket
import threading
import time
from contextvars import ContextVar
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

CURRENT: ContextVar[Deadline | None] = ContextVar("broxiva_http_deadline", default=None)


class Deadline:
    """A call's deadline: ``left()`` seconds remain; at the end the watched socket is shut down."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._done = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        return self.at - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            if self._done:  # cancelled while the timer was firing: the socket may be another call's now
                return
            self.expired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            try:
                # socket.socket's own shutdown, also for an SSLSocket: it acts on the descriptor
                # and does not touch the TLS state another thread is reading through.
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._done = True
            self._sock = None


class _Watched:
    """Hands the connection's socket to the call's watchdog: from the TCP connect on (so a TLS
    handshake is bounded too) and again for a pooled connection that is reused."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        deadline = CURRENT.get()
        if deadline is not None:
            deadline.watch(sock)
        return sock

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        deadline = CURRENT.get()
        if deadline is not None:
            deadline.watch(self.sock)  # type: ignore[attr-defined]
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _Connection(_Watched, HTTPConnection):
    pass


class _TlsConnection(_Watched, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


_POOLS = {"http": _Pool, "https": _TlsPool}


class _Adapter(HTTPAdapter):
    """requests' adapter whose connections report their socket to the call's watchdog."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


class PinnedAdapter(_Adapter):
    """Connects to one checked address whatever the URL's host says.

    The pool is keyed by that address, and for HTTPS by ``server_hostname``/``assert_hostname``
    = the URL's host: SNI and the certificate check use the name, the TCP connection the
    address, and urllib3 never resolves the name again (what a rebinding DNS server needs).
    Doing it in the adapter keeps requests' request building, TLS defaults and error types.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        name = host_params["host"]
        host_params["host"] = self.address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = name
            pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs


def new_session(adapter: HTTPAdapter, *, trust_env: bool) -> requests.Session:
    session = requests.Session()
    session.trust_env = trust_env
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # no cookies kept
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_trusted: dict[int, requests.Session] = {}
_trusted_lock = threading.Lock()


def trusted_session() -> requests.Session:
    """One session per process for trusted calls (connection reuse); a forked child makes its own."""
    pid = os.getpid()
    with _trusted_lock:
        if pid not in _trusted:
            _trusted.clear()
            _trusted[pid] = new_session(_Adapter(max_retries=0), trust_env=True)
        return _trusted[pid]
