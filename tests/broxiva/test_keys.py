from __future__ import annotations

import pytest

from broxiva import keys
from broxiva.keys import build_key, pattern, split_name, ttl

DESIGN_TTLS = {
    "fx": 3600,
    "tenant": 3600,
    "translation": 86400,
    "product": 3600,
    "idempotency": 86400,
    "sitemap": 86400,
    "domain": 300,
}

INJECTIONS = [
    "acme:fx",  # forges an extra segment
    "x:",
    ":x",
    "",
    " ",
    "a b",
    "a\tb",
    "a\nb",
    "a\rb",
    "a\x00b",
    "a\x1bb",
    "a\u200bb",  # zero-width space
    "a\u2028b",  # line separator
    "a\u202eb",  # right-to-left override
    "a\u00a0b",  # no-break space
    "*",
    "acme*",
    "a?",
    "[a]",
    "a\\b",
    "x" * 257,
]


class BuildKeyTests:
    def test_it_joins_category_tenant_entity_and_identifier(self, acme):
        assert build_key("fx", "rates", "USD") == "fx:rates:USD"
        assert build_key("translation", "product", "42", tenant="acme") == "translation:acme:product:42"
        assert build_key("product", "item", 42, tenant=acme) == "product:acme:item:42"

    def test_it_accepts_the_values_real_callers_pass(self):
        assert build_key("idempotency", "webhook", "shopify", "gid-00a1.B_c~9") == (
            "idempotency:webhook:shopify:gid-00a1.B_c~9"
        )
        assert build_key("translation", "fr-FR", "é漢字", tenant="acme") == "translation:acme:fr-FR:é漢字"
        assert build_key("sitemap", "x" * 256)

    @pytest.mark.parametrize("value", INJECTIONS)
    def test_it_refuses_injection_in_a_part(self, value):
        with pytest.raises(ValueError):
            build_key("fx", "rates", value)

    @pytest.mark.parametrize("value", INJECTIONS)
    def test_it_refuses_injection_in_the_tenant(self, value):
        with pytest.raises(ValueError):
            build_key("tenant", "config", tenant=value)

    def test_it_refuses_an_unknown_category(self):
        for category in ("session", "FX", "fx:", "", None):
            with pytest.raises(ValueError, match="unknown Redis key category"):
                build_key(category, "a")

    def test_it_refuses_a_key_without_parts(self):
        with pytest.raises(ValueError, match="at least one part"):
            build_key("fx")
        with pytest.raises(ValueError, match="at least one part"):
            build_key("fx", tenant="acme")

    def test_it_refuses_parts_that_are_not_strings_or_integers(self):
        for value in (None, True, 1.5, b"bytes", ["a"], object()):
            with pytest.raises(ValueError):
                build_key("fx", value)

    def test_a_forged_tenant_cannot_reach_another_tenants_key(self):
        globex_key = build_key("tenant", "config", "theme", tenant="globex")
        with pytest.raises(ValueError):
            build_key("tenant", "config", "theme", tenant="acme:globex")
        with pytest.raises(ValueError):
            build_key("tenant", "globex:config", tenant="acme")
        assert build_key("tenant", "config", "theme", tenant="acme") != globex_key


class SplitNameTests:
    def test_it_splits_a_colon_namespaced_name(self):
        assert split_name("webhook:shopify:evt_1") == ["webhook", "shopify", "evt_1"]
        assert split_name("schedules:register") == ["schedules", "register"]

    @pytest.mark.parametrize("name", ["", "a::b", "a:", ":a", "a b:c", "a:b\n", "a:*", 42, None, (), ("a", "b:c")])
    def test_it_refuses_bad_segments(self, name):
        with pytest.raises(ValueError):
            split_name(name)

    def test_a_tuple_keeps_each_element_in_one_part(self):
        assert split_name(("webhook", "shopify", 42)) == ["webhook", "shopify", "42"]


class PatternTests:
    def test_it_matches_only_keys_under_the_prefix(self):
        assert pattern("translation") == "translation:*"
        assert pattern("translation", tenant="acme") == "translation:acme:*"
        assert pattern("translation", "product", tenant="acme") == "translation:acme:product:*"
        with pytest.raises(ValueError):
            pattern("translation", tenant="a*")


class TTLTests:
    def test_it_returns_the_design_table(self):
        for category, seconds in DESIGN_TTLS.items():
            assert ttl(category) == seconds, category
        assert 30 <= ttl("lock") <= 60
        assert ttl("ratelimit") > 0
        # Beyond DESIGN.md §5: apps' own coordination keys (notifications' webhook dispatch flag).
        assert set(keys.CATEGORIES) == {*DESIGN_TTLS, "lock", "ratelimit", "webhook"}

    def test_it_refuses_an_unknown_category(self):
        with pytest.raises(ValueError):
            ttl("session")
