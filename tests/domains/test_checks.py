"""Each method against a real local DNS server (dnslib) and HTTP server, through ``domain_verify``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from werkzeug import Response

from domains.errors import CheckUnavailable
from domains.models import TenantDomain
from domains.services import domain_verify
from tests.domains.conftest import make_domain

pytestmark = pytest.mark.django_db

TOKEN = "tok_" + "A" * 40
TXT = "_broxiva-verification.shop.example"


def _row(pk: int) -> TenantDomain:
    return TenantDomain.objects.get(pk=pk)


class DnsTxtTests:
    def test_it_joins_a_txt_record_split_in_several_strings(self, acme, zone):
        d = make_domain(acme, "shop.example", token=TOKEN)
        zone.set(TXT, "TXT", [["broxiva-verification=tok_", "A" * 40]])
        assert domain_verify(domain_id=d.pk).result == "verified"
        row = _row(d.pk)
        assert (row.status, row.checks) == ("verified", 0)
        assert row.verified_at is not None and row.last_check["found"] is True

    def test_any_one_of_several_txt_records_may_match_quotes_and_spaces_ignored(self, acme, zone):
        d = make_domain(acme, "shop.example", token=TOKEN)
        zone.set(TXT, "TXT", ["google-site-verification=xyz", f'  "broxiva-verification={TOKEN}" ', "v=spf1 -all"])
        assert domain_verify(domain_id=d.pk).result == "verified"

    def test_a_wrong_token_is_a_check_that_says_what_it_saw(self, acme, zone):
        d = make_domain(acme, "shop.example", token=TOKEN)
        zone.set(TXT, "TXT", ["broxiva-verification=old-token"])
        before = timezone.now()
        assert domain_verify(domain_id=d.pk).result == "not_found"
        row = _row(d.pk)
        assert (row.status, row.checks) == ("pending", 1)
        assert row.last_check["summary"] == (
            "TXT at _broxiva-verification.shop.example: 'broxiva-verification=old-token' — does not match")
        assert before + timedelta(seconds=59) <= row.next_check_at <= timezone.now() + timedelta(seconds=61)

    def test_misses_back_off_1_2_4_minutes_capped_at_an_hour(self, acme, zone):
        d = make_domain(acme, "shop.example", token=TOKEN)
        waits = []
        for _ in range(8):
            TenantDomain.objects.filter(pk=d.pk).update(next_check_at=timezone.now())
            domain_verify(domain_id=d.pk)
            row = _row(d.pk)
            waits.append(round((row.next_check_at - row.last_checked_at).total_seconds() / 60))
        assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
        assert row.checks == 8

    def test_nxdomain_and_an_empty_answer_mean_not_there_yet(self, acme, zone):
        d = make_domain(acme, "shop.example", token=TOKEN)
        domain_verify(domain_id=d.pk)
        assert "no such name (NXDOMAIN)" in _row(d.pk).last_check["summary"]
        zone.set(TXT, "A", ["192.0.2.1"])  # the name exists, with no TXT: NOERROR and no answer
        TenantDomain.objects.filter(pk=d.pk).update(next_check_at=timezone.now())
        domain_verify(domain_id=d.pk)
        row = _row(d.pk)
        assert (row.status, row.checks) == ("pending", 2)
        assert row.last_check["summary"] == f"TXT at {TXT}: no record"

    @pytest.mark.parametrize("how", ["servfail", "silent"])
    def test_servfail_or_a_silent_server_is_transient_and_not_a_check(self, acme, zone, how):
        d = make_domain(acme, "shop.example", token=TOKEN)
        zone.fail(TXT, how)
        with pytest.raises(CheckUnavailable) as caught:
            domain_verify(domain_id=d.pk)
        assert caught.value.transient
        row = _row(d.pk)
        assert (row.status, row.checks, row.last_checked_at, row.last_check) == ("pending", 0, None, {})
        assert zone.asked[(TXT, "TXT")] >= 1

    def test_an_idn_domain_is_asked_for_in_its_xn_form(self, acme, zone):
        from domains.services import add_domain

        d = add_domain(tenant_id=acme.pk, domain="Bücher.example.", method="dns_txt")
        assert d.domain == "xn--bcher-kva.example"
        zone.set("_broxiva-verification.xn--bcher-kva.example", "TXT", [f"broxiva-verification={d.token}"])
        assert domain_verify(domain_id=d.pk).result == "verified"


class DnsCnameTests:
    def test_a_cname_chain_reaching_the_target_verifies(self, acme, zone, settings):
        settings.DOMAIN_CNAME_TARGET = "domains.broxiva.test"
        d = make_domain(acme, "www.shop.example", "dns_cname")
        zone.set("www.shop.example", "CNAME", ["edge.cdn.example"])
        zone.set("edge.cdn.example", "CNAME", ["domains.broxiva.test"])
        zone.set("domains.broxiva.test", "A", ["192.0.2.7"])
        assert domain_verify(domain_id=d.pk).result == "verified"
        assert _row(d.pk).last_check["summary"] == "CNAME www.shop.example → edge.cdn.example → domains.broxiva.test"

    def test_a_chain_longer_than_8_hops_or_elsewhere_does_not(self, acme, zone, settings):
        settings.DOMAIN_CNAME_TARGET = "domains.broxiva.test"
        d = make_domain(acme, "www.shop.example", "dns_cname")
        zone.set("www.shop.example", "CNAME", ["hop1.example"])
        for i in range(1, 10):
            zone.set(f"hop{i}.example", "CNAME", [f"hop{i + 1}.example"])
        zone.set("hop10.example", "CNAME", ["domains.broxiva.test"])
        assert domain_verify(domain_id=d.pk).result == "not_found"
        assert "longer than 8 hops" in _row(d.pk).last_check["summary"]
        zone.set("www.shop.example", "CNAME", ["other-host.example"])
        TenantDomain.objects.filter(pk=d.pk).update(next_check_at=timezone.now())
        domain_verify(domain_id=d.pk)
        assert _row(d.pk).last_check["summary"] == (
            "CNAME www.shop.example → other-host.example — does not reach domains.broxiva.test")

    def test_an_apex_with_the_targets_addresses_is_accepted_as_flattened(self, acme, zone, settings):
        settings.DOMAIN_CNAME_TARGET = "domains.broxiva.test"
        d = make_domain(acme, "shop.example", "dns_cname")
        zone.set("domains.broxiva.test", "A", ["192.0.2.7", "192.0.2.8"])
        zone.set("shop.example", "A", ["192.0.2.9"])
        assert domain_verify(domain_id=d.pk).result == "not_found"
        zone.set("shop.example", "A", ["192.0.2.8", "192.0.2.7"])
        TenantDomain.objects.filter(pk=d.pk).update(next_check_at=timezone.now())
        assert domain_verify(domain_id=d.pk).result == "verified"
        assert "flattened" in _row(d.pk).last_check["summary"]


PAGE = b"""<!doctype html><html><HEAD><title>Shop</title>
<META Content='%s' NAME="Broxiva-Verification" data-x=1>
</HEAD><body><meta name="broxiva-verification" content="in-the-body-not-counted"></body></html>"""


class HttpTests:
    def test_a_meta_tag_with_odd_attribute_order_quotes_and_case_verifies(self, acme, zone, web):
        d = make_domain(acme, "shop.example", "meta_tag", token=TOKEN)
        zone.set("shop.example", "A", ["127.0.0.1"])
        web.expect_request("/").respond_with_data(PAGE % TOKEN.encode(), content_type="text/html")
        assert domain_verify(domain_id=d.pk).result == "verified"

    def test_a_meta_tag_in_the_body_only_does_not(self, acme, zone, web):
        d = make_domain(acme, "shop.example", "meta_tag", token="in-the-body-not-counted")
        zone.set("shop.example", "A", ["127.0.0.1"])
        web.expect_request("/").respond_with_data(PAGE % b"other", content_type="text/html")
        assert domain_verify(domain_id=d.pk).result == "not_found"
        assert "'other' — does not match" in _row(d.pk).last_check["summary"]

    def test_an_http_file_is_fetched_over_http_when_https_cannot_connect(self, acme, zone, web):
        d = make_domain(acme, "shop.example", "http_file", token=TOKEN)
        zone.set("shop.example", "A", ["127.0.0.1"])
        web.expect_request("/.well-known/broxiva-verification.txt").respond_with_data(f"\n{TOKEN}\n")
        assert domain_verify(domain_id=d.pk).result == "verified"
        (lookup,) = [x for x in _row(d.pk).last_check["lookups"] if x["type"] == "HTTP"]
        assert [u.split(":")[0] for u in lookup["tried"]] == ["https", "http"]
        assert web.log[0][0].headers["Host"].startswith("shop.example")

    def test_an_http_file_redirect_to_a_refused_address_finds_nothing(self, acme, zone, web, settings):
        # The refused address is on loopback too (only 127.0.0.1 is allowed here), so even a broken
        # guard would send nothing off this machine; the ranges themselves are the classifier's tests.
        settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
        d = make_domain(acme, "shop.example", "http_file", token=TOKEN)
        zone.set("shop.example", "A", ["127.0.0.1"])
        zone.set("metadata.evil.example", "A", ["127.0.0.2"])
        web.expect_request("/.well-known/broxiva-verification.txt").respond_with_response(
            Response(status=302, headers={"Location": "http://metadata.evil.example/latest/"}))
        assert domain_verify(domain_id=d.pk).result == "not_found"
        row = _row(d.pk)
        assert (row.status, row.checks) == ("pending", 1)
        assert "metadata.evil.example resolves to 127.0.0.2, a loopback address: refused" in row.last_check["summary"]
        assert zone.asked[("metadata.evil.example", "A")] == 1  # its address came from our resolver

    def test_the_domains_address_comes_from_the_configured_resolver_and_the_guard_vets_it(self, acme, zone, web,
                                                                                             settings):
        settings.OUTBOUND_ALLOWED_NETWORKS = []
        d = make_domain(acme, "shop.example", "http_file", token=TOKEN)
        zone.set("shop.example", "A", ["127.0.0.1"])
        assert domain_verify(domain_id=d.pk).result == "not_found"
        assert "a loopback address: refused" in _row(d.pk).last_check["summary"]
        assert web.log == []  # refused before connecting

    def test_a_domain_without_addresses_is_not_there_yet_and_a_5xx_is_transient(self, acme, zone, web):
        d = make_domain(acme, "shop.example", "http_file", token=TOKEN)
        assert domain_verify(domain_id=d.pk).result == "not_found"
        assert _row(d.pk).last_check["summary"].endswith("shop.example has no A or AAAA record")
        zone.set("shop.example", "A", ["127.0.0.1"])
        web.expect_request("/.well-known/broxiva-verification.txt").respond_with_data("busy", status=503)
        TenantDomain.objects.filter(pk=d.pk).update(next_check_at=timezone.now())
        with pytest.raises(CheckUnavailable):
            domain_verify(domain_id=d.pk)
        assert _row(d.pk).checks == 1
