"""What proves a domain is the tenant's, one function per method: look, and say what was seen.

Each check returns a ``Finding``: ``found`` and, in words a tenant understands, what was looked
up and what came back (stored as ``TenantDomain.last_check``). "Not there yet" is a finding;
trouble on the way (DNS timeout, SERVFAIL, an HTTP timeout or 5xx) raises ``CheckUnavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lxml.etree
import lxml.html
from django.conf import settings

from domains.providers import dns, web

TXT_PREFIX = "_broxiva-verification"
TXT_VALUE = "broxiva-verification={token}"
FILE_PATH = "/.well-known/broxiva-verification.txt"
META_NAME = "broxiva-verification"
MAX_CNAME_HOPS = 8


@dataclass
class Finding:
    found: bool
    summary: str
    lookups: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"found": self.found, "summary": self.summary, "lookups": self.lookups}


def _shown(values: list[str] | tuple[str, ...], limit: int = 5) -> str:
    text = ", ".join(repr(v[:120]) for v in values[:limit])
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")


def check_dns_txt(domain: str, token: str) -> Finding:
    name = f"{TXT_PREFIX}.{domain}"
    expected = TXT_VALUE.format(token=token)
    result = dns.lookup(name, "TXT")
    lookups = [result.as_dict()]
    if not result.found:
        return Finding(False, f"TXT at {name}: {_absent(result)}", lookups)
    # Any one record may match; the tenant's DNS panel may have kept quotes or spaces around it.
    if any(value.strip().strip('"').strip() == expected for value in result.values):
        return Finding(True, f"TXT at {name}: found {expected.split('=')[0]}=… matching the token", lookups)
    return Finding(False, f"TXT at {name}: {_shown(result.values)} — does not match", lookups)


def _absent(result: dns.Lookup) -> str:
    return "no such name (NXDOMAIN)" if result.status == "NXDOMAIN" else "no record"


def check_dns_cname(domain: str, token: str) -> Finding:
    """``domain`` is a CNAME (chain) to ``DOMAIN_CNAME_TARGET``, or an apex resolving like it."""
    target = settings.DOMAIN_CNAME_TARGET.strip().rstrip(".").lower()
    lookups: list[dict[str, Any]] = []
    chain = [domain]
    name = domain
    for _ in range(MAX_CNAME_HOPS):
        result = dns.lookup(name, "CNAME")
        lookups.append(result.as_dict())
        if not result.found:
            break
        name = result.values[0]
        chain.append(name)
        if name == target:
            return Finding(True, f"CNAME {' → '.join(chain)}", lookups)
        if name in chain[:-1]:
            return Finding(False, f"CNAME loop: {' → '.join(chain)}", lookups)
    else:
        return Finding(False, f"CNAME chain {' → '.join(chain)} is longer than {MAX_CNAME_HOPS} hops "
                              f"without reaching {target}", lookups)
    if len(chain) > 1:
        return Finding(False, f"CNAME {' → '.join(chain)} — does not reach {target}", lookups)
    # No CNAME at the name: an apex cannot hold one, so accept its addresses if they are the
    # target's (CNAME flattening, ALIAS/ANAME records).
    own, own_lookups = dns.addresses(domain)
    lookups.extend(x.as_dict() for x in own_lookups)
    if not own:
        return Finding(False, f"CNAME at {domain}: {_absent(dns.Lookup(domain, 'CNAME', lookups[0]['status']))}; "
                              f"no A/AAAA records either", lookups)
    theirs, their_lookups = dns.addresses(target)
    lookups.extend(x.as_dict() for x in their_lookups)
    if theirs and set(own) <= set(theirs):
        return Finding(True, f"{domain} has no CNAME but resolves to {', '.join(own)}, addresses of {target} "
                             f"(flattened CNAME)", lookups)
    return Finding(False, f"{domain} has no CNAME to {target}, and its addresses {', '.join(own)} are not "
                          f"{target}'s ({', '.join(theirs) or 'none'})", lookups)


def _fetch(domain: str, path: str, lookups: list[dict[str, Any]]) -> tuple[web.Fetched | None, str]:
    found, address_lookups = dns.addresses(domain)
    lookups.extend(x.as_dict() for x in address_lookups)
    if not found:
        return None, f"{domain} has no A or AAAA record"
    fetched = web.fetch(domain, path, found)
    lookups.append({"name": domain, "type": "HTTP", "tried": list(fetched.tried), "url": fetched.url,
                    "status": fetched.status, "error": fetched.error})
    return fetched, fetched.describe()


def check_http_file(domain: str, token: str) -> Finding:
    lookups: list[dict[str, Any]] = []
    fetched, what = _fetch(domain, FILE_PATH, lookups)
    if fetched is None or fetched.error:
        return Finding(False, f"{FILE_PATH}: {what}", lookups)
    if fetched.status != 200:
        return Finding(False, f"{FILE_PATH}: {what}", lookups)
    body = fetched.body.decode("utf-8", "replace").strip()
    if body == token:
        return Finding(True, f"{FILE_PATH}: {what} with the token", lookups)
    return Finding(False, f"{FILE_PATH}: {what} with {body[:60]!r} — does not match", lookups)


def meta_tokens(html: bytes) -> list[str]:
    """Return the ``content`` of every ``<meta name="broxiva-verification">`` in the page's head."""
    try:
        doc = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return []
    head = doc.find("head")
    if head is None:
        return []
    return [
        (meta.get("content") or "").strip()
        for meta in head.iter("meta")
        if (meta.get("name") or "").strip().lower() == META_NAME
    ]


def check_meta_tag(domain: str, token: str) -> Finding:
    lookups: list[dict[str, Any]] = []
    fetched, what = _fetch(domain, "/", lookups)
    if fetched is None or fetched.error or fetched.status != 200:
        return Finding(False, f"home page: {what}", lookups)
    contents = meta_tokens(fetched.body)
    if token in contents:
        return Finding(True, f"home page: {what} with the broxiva-verification meta tag", lookups)
    if contents:
        return Finding(False, f"home page: meta broxiva-verification is {_shown(contents)} — does not match",
                       lookups)
    return Finding(False, f"home page: {what} without a broxiva-verification meta tag in its head", lookups)


CHECKS = {
    "dns_txt": check_dns_txt,
    "dns_cname": check_dns_cname,
    "http_file": check_http_file,
    "meta_tag": check_meta_tag,
}


def run(method: str, domain: str, token: str) -> Finding:
    return CHECKS[method](domain, token)
