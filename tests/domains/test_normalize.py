"""Domain names as stored: normalised with IDNA 2008 / UTS 46, refused with a clear reason."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from domains.normalize import normalize_domain


@pytest.mark.parametrize(("raw", "stored"), [
    ("Bücher.example.", "xn--bcher-kva.example"),
    ("  SHOP.Example.COM ", "shop.example.com"),
    ("ＳＨＯＰ．example", "shop.example"),  # full-width forms map (UTS 46)
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("a-b.co.uk", "a-b.co.uk"),
])
def test_it_stores_one_spelling(raw, stored):
    assert normalize_domain(raw) == stored


@pytest.mark.parametrize(("raw", "code"), [
    ("192.0.2.10", "ip_address"),
    ("[2001:db8::1]", "ip_address"),
    ("2001:db8::1", "ip_address"),
    ("10.1", "ip_address"),
    ("com", "tld"),
    ("example.", "tld"),
    ("*.shop.example", "wildcard"),
    ("https://shop.example/", "url"),
    ("shop.example/path", "url"),
    ("shop.example:8443", "port"),
    ("", "required"),
    ("shop..example", "invalid"),
    ("-shop.example", "invalid"),
    ("sh_op.example", "invalid"),
    ("a" * 64 + ".example", "invalid"),
    (("abcdefghi." * 26) + "example", "too_long"),
    (None, "invalid"),
])
def test_it_refuses_what_is_not_a_domain_name(raw, code):
    with pytest.raises(ValidationError) as caught:
        normalize_domain(raw)
    assert caught.value.code == code
    assert caught.value.messages[0]
