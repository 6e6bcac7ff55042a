"""``normalize_domain``: the one spelling a tenant's domain is stored and looked up in.

IDNA 2008 with UTS 46 mapping comes from the ``idna`` package (requests' own dependency): it
lower-cases, maps full-width and other compatibility forms, converts each label to its ``xn--``
form and refuses what a host name may not hold (empty labels, underscores, spaces, leading or
trailing hyphens, ``--`` in 3rd/4th position of a non-IDN label, bad A-labels). What it does not
know about — URLs, ports, wildcards, IP addresses, a bare TLD — is refused here first, so the
error says what the tenant typed wrong rather than which code point was invalid.
"""

from __future__ import annotations

import ipaddress
import re

import idna
from django.core.exceptions import ValidationError

MAX_LENGTH = 253
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(raw: object) -> str:
    """Return ``raw`` as stored: stripped, lower-case, no trailing dot, IDN as ``xn--`` labels.

    ``"Bücher.example."`` → ``"xn--bcher-kva.example"``. Raise ``ValidationError`` for an IP
    address, a bare TLD, a wildcard, a URL, a name with a port or any invalid host name.
    """
    if not isinstance(raw, str):
        raise ValidationError("Enter a domain name such as shop.example.com.", code="invalid")
    text = raw.strip()
    if not text:
        raise ValidationError("Enter a domain name such as shop.example.com.", code="required")
    if "://" in text or "/" in text or "?" in text or "#" in text or "@" in text:
        raise ValidationError(
            f"{text[:80]!r} is a URL: enter only the domain name, such as shop.example.com.", code="url")
    if "*" in text:
        raise ValidationError("Wildcard domains cannot be verified: enter one domain name.", code="wildcard")
    if _is_ip(text):
        raise ValidationError(f"{text[:80]!r} is an IP address: enter a domain name.", code="ip_address")
    if ":" in text:
        raise ValidationError(f"{text[:80]!r} has a port: enter the domain name without ':port'.", code="port")
    if text.endswith("."):
        text = text[:-1]
    if len(text) > MAX_LENGTH:
        raise ValidationError(f"A domain name is at most {MAX_LENGTH} characters.", code="too_long")
    try:
        ascii_name = idna.encode(text, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValidationError(f"{text[:80]!r} is not a valid domain name ({exc}).", code="invalid") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise ValidationError(f"{text[:80]!r} is a top-level domain: enter a domain under it, such as "
                              f"shop.{ascii_name}.", code="tld")
    if len(ascii_name) > MAX_LENGTH:
        raise ValidationError(f"A domain name is at most {MAX_LENGTH} characters.", code="too_long")
    if not all(_LABEL.match(label) for label in labels):
        raise ValidationError(f"{text[:80]!r} is not a valid domain name: use letters, digits and hyphens.",
                              code="invalid")
    if labels[-1].isdigit():  # "127.1", "10.0.0.1" in disguise: no TLD is numeric
        raise ValidationError(f"{text[:80]!r} is an IP address: enter a domain name.", code="ip_address")
    return ascii_name


def _is_ip(text: str) -> bool:
    candidate = text[1:].split("]")[0] if text.startswith("[") else text
    try:
        ipaddress.ip_address(candidate.split("%")[0])
    except ValueError:
        return False
    return True
