"""broxiva.admin.ReadOnly: the admins of rows only the system writes refuse adding and editing."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import RequestFactory

from broxiva.admin import ReadOnly

# Every admin of a system-written record, and whether staff may delete its rows.
EXPECTED = {
    "AlertAdmin": True, "OutboxJobAdmin": True, "TranslationBatchAdmin": True, "SyncRunAdmin": True,
    "ExchangeRateAdmin": False, "SitemapGenerationAdmin": False, "OutboundEmailAdmin": False,
    "PushDeliveryAdmin": False, "WebhookDeliveryAdmin": False, "WebhookMessageAdmin": False,
    "TranslationAdmin": False,
}


@pytest.mark.django_db
def test_a_superuser_can_neither_add_nor_edit_and_deletes_only_where_allowed():
    request = RequestFactory().get("/admin/")
    request.user = User.objects.create_superuser("root", "root@example.com", "x")
    read_only = {type(a).__name__: a for a in admin.site._registry.values() if isinstance(a, ReadOnly)}

    assert set(read_only) == set(EXPECTED)
    for name, model_admin in read_only.items():
        assert not model_admin.has_add_permission(request), name
        assert not model_admin.has_change_permission(request), name
        assert model_admin.has_delete_permission(request) is EXPECTED[name], name


@pytest.mark.django_db
def test_deleting_still_needs_the_users_own_permission():
    request = RequestFactory().get("/admin/")
    request.user = User.objects.create_user("staff", "staff@example.com", "x", is_staff=True)  # no permissions
    alerts = next(a for a in admin.site._registry.values() if type(a).__name__ == "AlertAdmin")
    assert alerts.deletable and not alerts.has_delete_permission(request)
