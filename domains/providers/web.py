"""Fetch a page of a tenant's domain for the ``http_file`` and ``meta_tag`` checks.

Through the kernel's guarded client (``broxiva.http``, ``untrusted=True``): 5 s for the whole
call, a 64 KB cap, at most 3 redirects each vetted again, private addresses refused unless
``OUTBOUND_ALLOWED_NETWORKS`` lets them. The addresses come from the configured nameservers
(``domains.providers.dns``), for the domain and for every redirect hop, not from the host's
resolver. https is tried first; if it cannot connect (or its TLS handshake or certificate check
fails), http.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from broxiva import http
from domains.errors import CheckUnavailable
from domains.providers import dns

TIMEOUT = 5.0
MAX_BYTES = 64 * 1024
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Fetched:
    """What a fetch got: the final URL and status and body, or ``error`` saying why there is none."""

    url: str
    status: int | None = None
    body: bytes = b""
    error: str = ""
    tried: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.error:
            return self.error
        return f"{http.safe_url(self.url)} answered HTTP {self.status}"


def _resolver(domain: str, pinned: list[str]):
    def resolve(host: str, left: float) -> Iterable[str]:
        if host.rstrip(".").lower() == domain:
            return pinned
        try:
            found, _ = dns.addresses(host, lifetime=left)
        except CheckUnavailable as exc:
            raise http.ConnectionFailed(str(exc)) from None
        if not found:
            raise http.ConnectionFailed(f"{host} has no A or AAAA record", transient=False)
        return found

    return resolve


def _url(scheme: str, domain: str, path: str) -> str:
    port = settings.DOMAIN_HTTPS_PORT if scheme == "https" else settings.DOMAIN_HTTP_PORT
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{domain}{'' if port == default else f':{port}'}{path}"


def fetch(domain: str, path: str, addresses: list[str]) -> Fetched:
    """GET ``path`` on ``domain`` (https, then http); ``addresses`` are the domain's, from DNS.

    A refused destination, a connection that fails on both schemes, too many redirects or a
    body over the cap come back as ``Fetched.error`` (the check found nothing). A timeout or a
    5xx/429 answer raises ``CheckUnavailable``: asking later may get an answer.
    """
    tried: list[str] = []
    resolve = _resolver(domain, addresses)
    last_error = ""
    for scheme in ("https", "http"):
        url = _url(scheme, domain, path)
        tried.append(url)
        try:
            response = http.get(url, untrusted=True, timeout=TIMEOUT, max_bytes=MAX_BYTES,
                                max_redirects=MAX_REDIRECTS, resolve=resolve)
        except (http.ConnectionFailed, http.Timeout) as exc:
            # https could not connect, or its TLS handshake failed: try http.
            last_error = f"{url}: {_reason(exc)}"
            if scheme == "https":
                continue
            if isinstance(exc, http.Timeout):
                raise CheckUnavailable(last_error) from None
            return Fetched(url, error=last_error, tried=tuple(tried))
        except http.HttpError as exc:  # refused destination, too large, too many redirects, bad URL
            return Fetched(url, error=f"{url}: {_reason(exc)}", tried=tuple(tried))
        if http.is_transient_status(response.status):
            raise CheckUnavailable(f"{http.safe_url(response.url)} answered HTTP {response.status}")
        return Fetched(response.url, status=response.status, body=response.body, tried=tuple(tried))
    return Fetched(tried[-1], error=last_error, tried=tuple(tried))  # pragma: no cover - loop always returns


def _reason(exc: http.HttpError) -> str:
    if isinstance(exc, http.BlockedDestination):
        return f"refused ({exc})"
    if isinstance(exc, http.TooLarge):
        return f"the answer is larger than {MAX_BYTES // 1024} KB"
    if isinstance(exc, http.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects"
    return str(exc)
