"""broxiva.http's destination guard: which addresses a tenant's URL may reach, and the check.

The classifier (``refusal_reason``, ``is_public_address``) is pure: it neither resolves nor
connects. ``check(url)`` resolves the host once and checks every address. Refused: unspecified, loopback,
private (RFC 1918), carrier-grade NAT, link-local (the cloud metadata address 169.254.169.254
among them), multicast, documentation/benchmark/reserved ranges, IPv6 unique-local and
link-local, and the IPv4-mapped, IPv4-compatible, 6to4 and NAT64 forms of refused IPv4
addresses (the embedded IPv4 address is what the packets reach).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

from broxiva.http.errors import BlockedDestination, ConnectionFailed, HttpError, InvalidUrl, Timeout
from broxiva.http.transport import Deadline

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Checked in order; the first match names the reason. ``ipaddress``' own flags (is_private,
# is_global, …) change between Python versions, so the ranges are spelled out here.
_V4: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # includes the broadcast address 255.255.255.255
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "reserved"),  # documentation
    ("198.51.100.0/24", "reserved"),
    ("203.0.113.0/24", "reserved"),
    ("198.18.0.0/15", "reserved"),  # benchmarking
    ("192.88.99.0/24", "reserved"),  # the retired 6to4 relay anycast
)
_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
    ("64:ff9b:1::/48", "local NAT64"),
    ("100::/64", "reserved"),  # discard
    ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo among them
    ("2001:db8::/32", "reserved"),  # documentation
    ("3fff::/20", "reserved"),  # documentation
    ("::/8", "reserved"),  # the rest of the IPv4-compatible and other legacy forms
)
_V4_NETS = tuple((ipaddress.IPv4Network(net), why) for net, why in _V4)
_V6_NETS = tuple((ipaddress.IPv6Network(net), why) for net, why in _V6)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_COMPATIBLE = ipaddress.IPv6Network("::/96")


def parse_address(text: str | Address) -> Address | None:
    """Return the address ``text`` spells (IPv6 with or without brackets), or None if it is no address."""
    if isinstance(text, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return text
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv4-mapped, -compatible, 6to4 or NAT64 address reaches."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal_reason(address: str | Address) -> str | None:
    """Return why a tenant's URL may not reach ``address`` ("loopback", …), or None if it may."""
    ip = parse_address(address)
    if ip is None:
        raise ValueError(f"{address!r} is not an IP address")
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            why = refusal_reason(inner)
            return f"{why} (as IPv6 {ip})" if why else None
        return next((why for net, why in _V6_NETS if ip in net), None)
    return next((why for net, why in _V4_NETS if ip in net), None)


def is_public_address(address: str | Address) -> bool:
    """Return True if ``address`` is a public unicast address a tenant's URL may reach."""
    return refusal_reason(address) is None


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(net) for net in spec)


def allowed(address: Address) -> bool:
    """Return True if ``OUTBOUND_ALLOWED_NETWORKS`` lets the guard reach ``address`` anyway."""
    nets = _networks(tuple(getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", ()) or ()))
    forms: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and (inner := embedded_ipv4(address)) is not None:
        forms.append(inner)
    return any(form.version == net.version and form in net for form in forms for net in nets)


# getaddrinfo() has no timeout of its own: it runs in a small pool so the call's deadline bounds it.
# One pool per process: a forked rq work horse inherits the parent's pool without its threads.
_resolvers: dict[int, ThreadPoolExecutor] = {}
_resolvers_lock = threading.Lock()


def _resolver() -> ThreadPoolExecutor:
    pid = os.getpid()
    with _resolvers_lock:
        if pid not in _resolvers:
            _resolvers.clear()
            _resolvers[pid] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="broxiva-http-dns")
        return _resolvers[pid]


Resolve = Callable[[str, float], Iterable[str]]


def _resolve(host: str, port: int, deadline: Deadline, resolve: Resolve | None = None) -> list[Address]:
    literal = parse_address(host)
    if literal is not None:
        return [literal]
    if resolve is not None:  # the caller's resolver, bounded by the time it is given
        left = deadline.left()
        if left <= 0:
            raise Timeout(f"resolving {host} timed out after {deadline.seconds:g}s")
        try:
            answers = list(resolve(host, left))
        except HttpError:
            raise
        except Exception as exc:
            raise ConnectionFailed(f"cannot resolve {host} ({exc.__class__.__name__})") from None
        return list(dict.fromkeys(a for a in map(parse_address, answers) if a is not None))
    future = _resolver().submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=max(deadline.left(), 0.001))
    except FutureTimeout:
        raise Timeout(f"resolving {host} timed out after {deadline.seconds:g}s") from None
    except (OSError, UnicodeError) as exc:
        raise ConnectionFailed(f"cannot resolve {host} ({exc.__class__.__name__})") from None
    found = [parse_address(str(info[4][0]).split("%")[0]) for info in infos]
    return list(dict.fromkeys(a for a in found if a is not None))


def check(url: str, deadline: Deadline, *, resolve: Resolve | None = None) -> str:
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
    addresses = _resolve(host, port, deadline, resolve)
    if not addresses:
        raise ConnectionFailed(f"{host} resolves to no address", url=url)
    for address in addresses:
        reason = refusal_reason(address)
        if reason is not None and not allowed(address):
            raise BlockedDestination(f"{host} resolves to {address}, a {reason} address: refused", url=url)
    return str(addresses[0])
