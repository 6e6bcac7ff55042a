"""Domain verification in headless Chromium: staff open a pending domain from the admin index, read
what the tenant must publish, press "Verify now" on its page, and a real worker asks the local DNS
server; the page, reloaded, shows Verified, or why not."""

from __future__ import annotations

import pytest

from domains.models import TenantDomain
from tests.domains.conftest import make_domain
from tests.workers import running_worker, wait_for, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
QUEUE = "domain-verification"
LIST = "/admin/domains/tenantdomain/"
TXT_NAME = "_broxiva-verification.shop.example"


@pytest.fixture
def checker(zone):
    """A worker on the domains queue whose checks ask the local DNS server."""
    env = worker_env(DNS_NAMESERVERS=zone.address, DNS_TIMEOUT="1", DNS_LIFETIME="3")
    with running_worker(QUEUE, env=env) as worker:
        yield worker


def open_the_domain(flow, page, domain: TenantDomain) -> None:
    flow.log_in("ops")
    flow.click(f"#content-main th a[href='{LIST}']")
    flow.step("domains")
    flow.click(f"#result_list th a:has-text('{domain.domain}')")
    assert flow.reached("the pending domain") <= 3
    assert field(page, "status") == "Pending"


def field(page, name: str) -> str:
    """The text of a read-only field on the change page."""
    return page.inner_text(f".field-{name} .readonly").strip()


def verify_now(flow, page, domain: TenantDomain) -> None:
    """Press the page's Verify now button by keyboard; wait for the worker's check to be recorded."""
    checked = TenantDomain.objects.get(pk=domain.pk).last_checked_at
    flow.press("#domain-verify-now", "Enter")
    page.wait_for_selector(f"text=Check requested for {domain.domain}")
    flow.step("check requested")

    def recorded():
        row = TenantDomain.objects.get(pk=domain.pk)
        return row.last_checked_at != checked and row.verify_requested_at is None

    wait_for(recorded, timeout=60, what="the worker to record its check")
    flow.reload()


def test_staff_verify_a_pending_domain_from_its_page_once_the_txt_record_is_published(
    flow, page, staff, acme, zone, checker
):
    d = make_domain(acme, "shop.example")
    zone.set("shop.example", "A", ["127.0.0.1"])  # the domain exists; its TXT record is not there yet
    open_the_domain(flow, page, d)

    instructions = page.locator(".field-instructions .readonly")
    assert instructions.is_visible()
    text = instructions.inner_text()
    assert "Add a TXT record with this name and value at your DNS provider." in text
    assert TXT_NAME in text and f"broxiva-verification={d.token}" in text  # what the tenant publishes
    assert field(page, "findings") == "not checked yet"

    zone.set(TXT_NAME, "TXT", [f"broxiva-verification={d.token}"])  # the tenant publishes it
    verify_now(flow, page, d)
    flow.step("verified")
    assert field(page, "status") == "Verified"
    assert f"TXT at {TXT_NAME}: found broxiva-verification=… matching the token" in field(page, "findings")
    change = page.locator(".field-history tr").nth(1).locator("td").all_inner_texts()
    assert change[1:3] == ["pending", "verified"] and change[4] == "worker"  # the history, newest first
    assert zone.asked[(TXT_NAME, "TXT")] >= 1
    assert TenantDomain.objects.get(pk=d.pk).status == "verified"


def test_the_page_says_why_a_domain_is_not_verified_when_the_record_is_absent_or_wrong(
    flow, page, staff, acme, zone, checker
):
    d = make_domain(acme, "shop.example")
    open_the_domain(flow, page, d)

    verify_now(flow, page, d)  # nothing published at all
    flow.step("no record")
    assert field(page, "status") == "Pending"
    assert f"TXT at {TXT_NAME}: no such name (NXDOMAIN)" in field(page, "findings")
    assert field(page, "checks") == "1"

    zone.set(TXT_NAME, "TXT", ["broxiva-verification=an-old-token"])  # published, but not this token
    verify_now(flow, page, d)
    flow.step("wrong record")
    assert field(page, "status") == "Pending"
    assert f"TXT at {TXT_NAME}: 'broxiva-verification=an-old-token' — does not match" in field(page, "findings")
    assert field(page, "checks") == "2"
    assert TenantDomain.objects.get(pk=d.pk).status == "pending"
