"""Staff find a tenant in the admin (headless Chromium)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class AdminTests:
    def test_it_lets_staff_find_a_tenant(self, flow, page, staff, acme, globex):
        flow.log_in("ops")
        flow.click("#content-main th a[href='/admin/broxiva/tenant/']")
        flow.step("tenants")
        page.fill("#searchbar", "glob")
        page.press("#searchbar", "Enter")
        page.wait_for_url("**/tenant/?q=glob")
        flow.step("searched for glob")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1
        assert "globex" in rows.first.inner_text()
        flow.goto("/admin/broxiva/tenant/")
        assert page.locator("#result_list tbody tr").count() == 2
        flow.click("#changelist-filter a:has-text('JPY')")
        page.wait_for_url("**default_currency**")
        flow.step("filtered on JPY")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1 and "globex" in rows.first.inner_text()
