"""The project's one outbound-HTTP client: ``request(method, url, *, untrusted=False, **options)``.

Every call has a connect timeout and a deadline on the whole call (connect, headers and body),
a streamed response-size cap, redirects followed by us (each hop checked again), typed errors
carrying ``transient`` and logs that name URLs without query string or credentials.

URLs that tenants give us (``untrusted=True``) also pass the destination guard: the host is
resolved once, every address is checked (``is_public_address``) and the connection goes to the
checked address, with the original host in ``Host`` and in TLS SNI and certificate checks, so
a rebinding DNS server cannot answer a second lookup differently. ``OUTBOUND_ALLOWED_NETWORKS``
lists networks allowed anyway. Operator-configured URLs (FX, LLM base URLs) are trusted.
"""

from __future__ import annotations

import http.cookiejar
import json as jsonlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from broxiva.addresses import Address, allowed, parse_address, refusal_reason
from broxiva.addresses import is_public_address as is_public_address  # re-exported: the guard's classifier
from broxiva.ratelimit import retry_after_seconds

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
USER_AGENT = "Broxiva-Workers/1.0 (+https://broxiva.com)"
CHUNK = 8192
REDIRECTS = (301, 302, 303, 307, 308)
# Sent to the same origin only: a redirect to another host must not carry them along.
ORIGIN_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")


# --- Errors -----------------------------------------------------------------------------------

class HttpError(Exception):
    """An outbound call failed. ``transient``: the same call may succeed later (retry it).

    Messages name the method and host, never the query string or credentials of the URL.
    """

    transient: bool = False

    def __init__(self, message: str, *, url: str = "", transient: bool | None = None) -> None:
        self.url = safe_url(url) if url else ""
        if transient is not None:
            self.transient = transient
        super().__init__(message)


class Timeout(HttpError):
    transient = True


class ConnectionFailed(HttpError):
    transient = True


class TooLarge(HttpError):
    """The response passed ``max_bytes``: asking again brings the same body."""


class TooManyRedirects(HttpError):
    pass


class InvalidUrl(HttpError):
    pass


class BlockedDestination(HttpError):
    """An untrusted URL points at a refused address (or scheme, or carries credentials)."""


class HttpStatusError(HttpError):
    """A non-2xx answer (``Response.raise_for_status``): 5xx, 408, 425 and 429 are transient."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self.status = response.status
        self.retry_after = (retry_after_seconds(response.headers.get("Retry-After"))
                            if response.status in (429, 503) else None)
        transient = response.status >= 500 or response.status in (408, 425, 429)
        host = urlsplit(response.url).hostname or "?"
        super().__init__(f"{response.method} {host}: HTTP {response.status}", url=response.url, transient=transient)


# --- Responses and URLs -----------------------------------------------------------------------

@dataclass(frozen=True)
class Response:
    method: str
    url: str  # the final URL, after redirects
    status: int
    headers: CaseInsensitiveDict
    body: bytes
    elapsed: float  # seconds, the whole call

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        charset = "utf-8"
        for param in self.headers.get("Content-Type", "").split(";")[1:]:
            name, _, value = param.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.body.decode(charset, "replace")
        except LookupError:
            return self.body.decode("utf-8", "replace")

    def json(self, **kwargs: Any) -> Any:
        return jsonlib.loads(self.body, **kwargs)

    def raise_for_status(self) -> Response:
        """Return self for a 2xx answer; raise ``HttpStatusError`` otherwise."""
        if not self.ok:
            raise HttpStatusError(self)
        return self


def safe_url(url: str) -> str:
    """Return ``url`` without query string, fragment or credentials, for logs and messages."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"


# --- Deadline ---------------------------------------------------------------------------------
# A socket timeout bounds each recv(), not the call: a server dripping a byte a second keeps
# every recv() short and the call alive for ever. So each call has a watchdog timer that, at
# the deadline, shuts the connection's socket down: whatever recv() is blocked (status line,
# headers or body; plain or TLS) returns at once, and the call raises Timeout. This covers the
# headers phase too, which happens inside http.client where we cannot shrink timeouts per read.

_CURRENT: ContextVar[_Deadline | None] = ContextVar("broxiva_http_deadline", default=None)


class _Deadline:
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
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        deadline = _CURRENT.get()
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


class _PinnedAdapter(_Adapter):
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


def _session(adapter: HTTPAdapter, *, trust_env: bool) -> requests.Session:
    session = requests.Session()
    session.trust_env = trust_env
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # no cookies kept
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_trusted: dict[int, requests.Session] = {}
_trusted_lock = threading.Lock()


def _trusted_session() -> requests.Session:
    """One session per process for trusted calls (connection reuse); a forked child makes its own."""
    pid = os.getpid()
    with _trusted_lock:
        if pid not in _trusted:
            _trusted.clear()
            _trusted[pid] = _session(_Adapter(max_retries=0), trust_env=True)
        return _trusted[pid]


# --- The guard ------------------------------------------------------------------------------
# getaddrinfo() has no timeout of its own: it runs in a small pool so the call's deadline bounds it.
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="broxiva-http-dns")


def _resolve(host: str, port: int, deadline: _Deadline) -> list[Address]:
    literal = parse_address(host)
    if literal is not None:
        return [literal]
    future = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=max(deadline.left(), 0.001))
    except FutureTimeout:
        raise Timeout(f"resolving {host} timed out after {deadline.seconds:g}s") from None
    except (OSError, UnicodeError) as exc:
        raise ConnectionFailed(f"cannot resolve {host} ({exc.__class__.__name__})") from None
    found = [parse_address(str(info[4][0]).split("%")[0]) for info in infos]
    return list(dict.fromkeys(a for a in found if a is not None))


def _check(url: str, deadline: _Deadline) -> str:
    """Return the address to connect to for an untrusted ``url``; raise ``BlockedDestination``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https"):
        raise BlockedDestination(f"{host or url[:40]}: only http and https URLs are allowed", url=url)
    if parts.username is not None or parts.password is not None:
        raise BlockedDestination(f"{host}: credentials in the URL are not allowed", url=url)
    if not host:
        raise InvalidUrl("URL without a host", url=url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidUrl(f"{host}: invalid port", url=url) from None
    addresses = _resolve(host, port, deadline)
    if not addresses:
        raise ConnectionFailed(f"{host} resolves to no address", url=url)
    for address in addresses:
        reason = refusal_reason(address)
        if reason is not None and not allowed(address):
            raise BlockedDestination(f"{host} resolves to {address}, a {reason} address: refused", url=url)
    return str(addresses[0])


# --- request() ------------------------------------------------------------------------------

def get(url: str, **options: Any) -> Response:
    return request("GET", url, **options)


def post(url: str, **options: Any) -> Response:
    return request("POST", url, **options)


def request(
    method: str,
    url: str,
    *,
    untrusted: bool = False,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    data: Any = None,
    json: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    verify: bool | str = True,
) -> Response:
    """Make one call and return its ``Response`` whatever the status (see ``raise_for_status``).

    ``timeout`` bounds the whole call, redirects included; ``connect_timeout`` each connection.
    Redirects are followed up to ``max_redirects`` (more raise ``TooManyRedirects``); with
    ``max_redirects=0`` a redirect is returned as it is. ``untrusted=True`` guards every hop.
    Raise ``HttpError`` subclasses: ``Timeout``, ``ConnectionFailed``, ``TooLarge``,
    ``TooManyRedirects``, ``InvalidUrl``, ``BlockedDestination``.
    """
    method = method.upper()
    started = time.monotonic()
    deadline = _Deadline(float(timeout))
    token = _CURRENT.set(deadline)
    try:
        prepared = _prepare(method, url, params=params, headers=headers, data=data, json=json)
        hops = 0
        while True:
            response = _send(prepared, untrusted=untrusted, deadline=deadline, connect_timeout=connect_timeout,
                             max_bytes=max_bytes, verify=verify, started=started)
            location = response.headers.get("Location")
            if response.status not in REDIRECTS or not location or max_redirects <= 0:
                break
            hops += 1
            if hops > max_redirects:
                raise TooManyRedirects(f"{method} {urlsplit(url).hostname}: more than {max_redirects} redirects",
                                       url=url)
            prepared = _redirected(prepared, response, location)
    except HttpError as exc:
        logger.warning("http %s %s failed after %dms: %s", method, safe_url(url),
                       (time.monotonic() - started) * 1000, exc)
        raise
    finally:
        deadline.cancel()
        _CURRENT.reset(token)
    logger.info("http %s %s status=%d bytes=%d ms=%d", method, safe_url(response.url), response.status,
                len(response.body), response.elapsed * 1000)
    return response


def _prepare(method: str, url: str, **kwargs: Any) -> requests.PreparedRequest:
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", **(kwargs.pop("headers") or {})}
    try:
        return requests.Request(method, url, headers=headers, **kwargs).prepare()
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema, ValueError, UnicodeError):
        raise InvalidUrl(f"invalid URL {safe_url(url)}") from None


def _redirected(prepared: requests.PreparedRequest, response: Response, location: str) -> requests.PreparedRequest:
    """Return the request for a redirect's next hop (RFC 9110 §15.4: 303, or 301/302 after POST, become GET)."""
    target = urljoin(response.url, location)
    method = prepared.method or "GET"
    keep_body = response.status in (307, 308)
    if response.status == 303 and method != "HEAD" or response.status in (301, 302) and method == "POST":
        method = "GET"
    headers = {k: v for k, v in prepared.headers.items() if k.lower() not in ("host", "content-length")}
    if not keep_body:
        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "transfer-encoding")}
    old, new = urlsplit(response.url), urlsplit(target)
    if (old.scheme, old.hostname, old.port) != (new.scheme, new.hostname, new.port):
        headers = {k: v for k, v in headers.items() if k not in ORIGIN_HEADERS and k.title() not in ORIGIN_HEADERS}
    try:
        nxt = requests.Request(method, target, headers=headers,
                               data=prepared.body if keep_body else None).prepare()
    except (requests.RequestException, ValueError, UnicodeError):
        raise InvalidUrl(f"redirect to an invalid URL {safe_url(target)}", url=response.url) from None
    if urlsplit(nxt.url or "").scheme not in ("http", "https"):
        raise InvalidUrl(f"redirect to a non-HTTP URL ({urlsplit(target).scheme}:)", url=response.url)
    return nxt


@contextmanager
def _session_for(prepared: requests.PreparedRequest, untrusted: bool,
                 deadline: _Deadline) -> Iterator[requests.Session]:
    if not untrusted:
        yield _trusted_session()
        return
    address = _check(prepared.url or "", deadline)
    # The checked address is where we connect; the name stays in Host (and in SNI, see above).
    prepared.headers["Host"] = urlsplit(prepared.url or "").netloc
    session = _session(_PinnedAdapter(address), trust_env=False)  # no proxy: it would resolve the name again
    try:
        yield session
    finally:
        session.close()


def _send(prepared: requests.PreparedRequest, *, untrusted: bool, deadline: _Deadline, connect_timeout: float,
          max_bytes: int, verify: bool | str, started: float) -> Response:
    url = prepared.url or ""
    host = urlsplit(url).hostname or "?"
    what = f"{prepared.method} {host}"
    if not untrusted and urlsplit(url).scheme not in ("http", "https"):
        raise InvalidUrl(f"{what}: only http and https URLs can be called", url=url)
    with _session_for(prepared, untrusted, deadline) as session:
        left = deadline.left()
        if left <= 0:
            raise Timeout(f"{what}: timed out after {deadline.seconds:g}s", url=url)
        try:
            with session.send(prepared, stream=True, allow_redirects=False, verify=verify,
                              timeout=(min(float(connect_timeout), left), left)) as resp:
                body = _read_body(resp, max_bytes=max_bytes, deadline=deadline, what=what, url=url)
                status, headers = resp.status_code, resp.headers
        except HttpError:
            raise
        except requests.exceptions.SSLError:
            raise ConnectionFailed(f"{what}: TLS handshake or certificate check failed", url=url,
                                   transient=False) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # The exception texts hold the full URL (and so any key in it): name only the class.
            if deadline.expired or isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
                raise Timeout(f"{what}: timed out after {deadline.seconds:g}s", url=url) from None
            raise ConnectionFailed(f"{what}: connection failed or response cut short ({exc.__class__.__name__})",
                                   url=url) from None
    if deadline.expired:  # the watchdog's shutdown can look like a normal end of a body without length
        raise Timeout(f"{what}: timed out after {deadline.seconds:g}s", url=url)
    return Response(method=prepared.method or "GET", url=url, status=status, headers=headers, body=body,
                    elapsed=time.monotonic() - started)


def _read_body(resp: requests.Response, *, max_bytes: int, deadline: _Deadline, what: str, url: str) -> bytes:
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise TooLarge(f"{what}: response of {length} bytes is over the {max_bytes}-byte limit", url=url)
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.raw.stream(CHUNK, decode_content=True):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"{what}: response larger than {max_bytes} bytes", url=url)
        chunks.append(chunk)
        if deadline.left() <= 0:
            raise Timeout(f"{what}: timed out after {deadline.seconds:g}s reading the body", url=url)
    return b"".join(chunks)
