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

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from broxiva.http.errors import (
    BlockedDestination,
    ConnectionFailed,
    HttpError,
    HttpStatusError,
    InvalidUrl,
    Response,
    Timeout,
    TooLarge,
    TooManyRedirects,
    is_transient_status,
    safe_url,
)
from broxiva.http.guard import check, is_public_address
from broxiva.http.transport import CURRENT, Deadline, PinnedAdapter, new_session, trusted_session

__all__ = [
    "BlockedDestination", "ConnectionFailed", "HttpError", "HttpStatusError", "InvalidUrl", "Response", "Timeout",
    "TooLarge", "TooManyRedirects", "get", "is_public_address", "is_transient_status", "post", "request",
    "safe_url",
]

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
    secret_path: bool = False,
    resolve: Callable[[str, float], Iterable[str]] | None = None,
) -> Response:
    """Make one call and return its ``Response`` whatever the status (see ``raise_for_status``).

    ``timeout`` bounds the whole call, redirects included; ``connect_timeout`` each connection.
    Redirects are followed up to ``max_redirects`` (more raise ``TooManyRedirects``); with
    ``max_redirects=0`` a redirect is returned as it is. ``untrusted=True`` guards every hop.
    Raise ``HttpError`` subclasses: ``Timeout``, ``ConnectionFailed``, ``TooLarge``,
    ``TooManyRedirects``, ``InvalidUrl``, ``BlockedDestination``.

    ``secret_path=True`` for a URL whose path is a credential (a chat webhook such as Slack's
    embeds its token there): logs and the error's ``url`` then show only scheme, host and port.

    ``resolve(host, seconds_left)`` (untrusted calls only) replaces the system resolver for every
    hop: it returns the host's addresses (which the guard then vets) or raises an ``HttpError``
    (a domain check asks the nameservers it is configured with, not the host's).
    """
    if resolve is not None and not untrusted:
        raise ValueError("resolve= is for untrusted calls: trusted ones use the system resolver")
    method = method.upper()
    started = time.monotonic()
    deadline = Deadline(float(timeout))
    token = CURRENT.set(deadline)
    try:
        prepared = _prepare(method, url, params=params, headers=headers, data=data, json=json)
        hops = 0
        while True:
            response = _send(prepared, untrusted=untrusted, deadline=deadline, connect_timeout=connect_timeout,
                             max_bytes=max_bytes, verify=verify, started=started, resolve=resolve)
            location = response.headers.get("Location")
            if response.status not in REDIRECTS or not location or max_redirects <= 0:
                break
            hops += 1
            if hops > max_redirects:
                raise TooManyRedirects(f"{method} {urlsplit(url).hostname}: more than {max_redirects} redirects",
                                       url=url)
            prepared = _redirected(prepared, response, location)
    except HttpError as exc:
        if secret_path:
            exc.url = _origin(url)
        logger.warning("http %s %s failed after %dms: %s", method, _origin(url) if secret_path else safe_url(url),
                       (time.monotonic() - started) * 1000, exc)
        raise
    finally:
        deadline.cancel()
        CURRENT.reset(token)
    shown = _origin(response.url) if secret_path else safe_url(response.url)
    logger.info("http %s %s status=%d bytes=%d ms=%d", method, shown, response.status,
                len(response.body), response.elapsed * 1000)
    return response


def _origin(url: str) -> str:
    """Return ``scheme://host:port`` of ``url``: what may be shown of a URL whose path is a secret."""
    shown = safe_url(url)
    path = urlsplit(url).path if shown != "<invalid URL>" else ""
    return shown[: len(shown) - len(path)] if path and shown.endswith(path) else shown


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
def _session_for(prepared: requests.PreparedRequest, untrusted: bool, deadline: Deadline,
                 resolve: Callable[[str, float], Iterable[str]] | None = None) -> Iterator[requests.Session]:
    if not untrusted:
        yield trusted_session()
        return
    address = check(prepared.url or "", deadline, resolve=resolve)
    # The checked address is where we connect; the name stays in Host (and in SNI: PinnedAdapter).
    prepared.headers["Host"] = urlsplit(prepared.url or "").netloc
    session = new_session(PinnedAdapter(address), trust_env=False)  # no proxy: it would resolve the name again
    try:
        yield session
    finally:
        session.close()


def _send(prepared: requests.PreparedRequest, *, untrusted: bool, deadline: Deadline, connect_timeout: float,
          max_bytes: int, verify: bool | str, started: float,
          resolve: Callable[[str, float], Iterable[str]] | None = None) -> Response:
    url = prepared.url or ""
    host = urlsplit(url).hostname or "?"
    what = f"{prepared.method} {host}"
    if not untrusted and urlsplit(url).scheme not in ("http", "https"):
        raise InvalidUrl(f"{what}: only http and https URLs can be called", url=url)
    with _session_for(prepared, untrusted, deadline, resolve) as session:
        if not untrusted and verify is True:  # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, as requests.get() reads them
            verify = session.merge_environment_settings(url, {}, True, verify, None)["verify"]
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


def _read_body(resp: requests.Response, *, max_bytes: int, deadline: Deadline, what: str, url: str) -> bytes:
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
