"""DNS lookups with dnspython against the configured nameservers, bounded in time.

The resolver is built from settings, never from the host's configuration when
``DNS_NAMESERVERS`` is set (``"ip"`` or ``"ip:port"``, IPv6 as ``"[::1]:5353"``): the answers a
check trusts come from the servers the operator chose. ``DNS_TIMEOUT`` bounds each server's
answer and ``DNS_LIFETIME`` the whole lookup (every server and retry).

``lookup()`` tells "not there" from "cannot tell now": NXDOMAIN and NoAnswer come back as an
empty ``Lookup`` with ``status`` ``"NXDOMAIN"`` / ``"no answer"``; a timeout, SERVFAIL (every
server failing is dnspython's ``NoNameservers``) or no reachable nameserver raise
``CheckUnavailable``, which the job lets the queue retry.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from domains.errors import CheckUnavailable


@dataclass(frozen=True)
class Lookup:
    """One question and what came back: ``values`` as text (TXT strings joined), empty when absent."""

    name: str
    rdtype: str
    status: str  # "ok", "NXDOMAIN" or "no answer"
    values: tuple[str, ...] = field(default=())

    @property
    def found(self) -> bool:
        return self.status == "ok" and bool(self.values)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "type": self.rdtype, "status": self.status, "values": list(self.values)}


def parse_nameserver(entry: str) -> tuple[str, int]:
    """Return ``(address, port)`` for ``"ip"``, ``"ip:port"``, ``"[v6]:port"`` or ``"v6"``."""
    text = entry.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ImproperlyConfigured(f"DNS_NAMESERVERS: {entry!r} is not ip or ip:port")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise ImproperlyConfigured(f"DNS_NAMESERVERS: {entry!r} is not ip or ip:port")
        port = int(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ImproperlyConfigured(f"DNS_NAMESERVERS: {entry!r} is not an IP address (with an optional port)") \
            from None
    if not 0 < port < 65536:
        raise ImproperlyConfigured(f"DNS_NAMESERVERS: port of {entry!r} is out of range")
    return host, port


_cache: dict[tuple[object, ...], dns.resolver.Resolver] = {}
_cache_lock = threading.Lock()


def resolver() -> dns.resolver.Resolver:
    """Return the resolver the settings describe (one per distinct configuration, shared by threads)."""
    servers = tuple(settings.DNS_NAMESERVERS or ())
    key = (servers, float(settings.DNS_TIMEOUT), float(settings.DNS_LIFETIME))
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            return found
        if servers:
            res = dns.resolver.Resolver(configure=False)
            res.nameservers = [dns.nameserver.Do53Nameserver(*parse_nameserver(s)) for s in servers]
        else:
            res = dns.resolver.Resolver()  # DNS_NAMESERVERS unset: the system's resolvers
        res.timeout = key[1]
        res.lifetime = key[2]
        res.cache = None  # every check asks again: a record published a minute ago must be seen
        _cache.clear()
        _cache[key] = res
        return res


def lookup(name: str, rdtype: str, *, lifetime: float | None = None) -> Lookup:
    """Ask the configured nameservers for ``rdtype`` records of ``name`` (no search list)."""
    res = resolver()
    try:
        answer = res.resolve(dns.name.from_text(name), rdtype, search=False, raise_on_no_answer=False,
                             lifetime=min(lifetime, res.lifetime) if lifetime else None)
    except dns.resolver.NXDOMAIN:
        return Lookup(name, rdtype, "NXDOMAIN")
    except dns.resolver.NoAnswer:
        return Lookup(name, rdtype, "no answer")
    except dns.resolver.NoNameservers:
        raise CheckUnavailable(f"DNS {rdtype} {name}: no nameserver could answer (SERVFAIL or refused)") from None
    except dns.exception.Timeout:
        raise CheckUnavailable(f"DNS {rdtype} {name}: timed out") from None
    except dns.exception.DNSException as exc:
        raise CheckUnavailable(f"DNS {rdtype} {name}: {exc.__class__.__name__}") from None
    if answer.rrset is None:
        return Lookup(name, rdtype, "no answer")
    return Lookup(name, rdtype, "ok", tuple(_text(rdata) for rdata in answer.rrset))


def _text(rdata: object) -> str:
    if rdata.rdtype == dns.rdatatype.TXT:  # type: ignore[attr-defined]
        # One TXT record may be split in several <=255-byte strings: they form one value.
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    if rdata.rdtype == dns.rdatatype.CNAME:  # type: ignore[attr-defined]
        return rdata.target.to_text(omit_final_dot=True).lower()  # type: ignore[attr-defined]
    return rdata.to_text()


def addresses(name: str, *, lifetime: float | None = None) -> tuple[list[str], list[Lookup]]:
    """Return ``name``'s A and AAAA addresses and the two lookups (empty list: it has none)."""
    found: list[str] = []
    lookups = []
    for rdtype in ("A", "AAAA"):
        result = lookup(name, rdtype, lifetime=lifetime)
        lookups.append(result)
        found.extend(result.values)
    return list(dict.fromkeys(found)), lookups
