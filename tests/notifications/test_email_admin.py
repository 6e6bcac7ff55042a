"""The e-mail admin is read-only, filters and searches, and never shows a body; EMAIL_* settings."""

from __future__ import annotations

import pytest

from notifications.models import OutboundEmail
from notifications.services import queue_email
from tests.broxiva.test_settings import manage

URL = "/admin/notifications/outboundemail/"


@pytest.mark.django_db
class OutboundEmailAdminTests:
    def test_it_lists_filters_and_searches(self, admin_client, acme):
        queue_email(to="ops@acme.test", subject="Password reset", text="Use https://acme.test/reset/s3cr3t-t0ken",
                    tenant_id=acme.pk)
        failed = queue_email(to="ghost@acme.test", subject="Welcome", text="x")
        OutboundEmail.objects.filter(pk=failed).update(status="failed", last_error="550 5.1.1 no such user")
        page = admin_client.get(URL)
        assert page.status_code == 200
        assert "ops@acme.test" in page.text and "Password reset" in page.text and "By status" in page.text
        assert admin_client.get(URL, {"status__exact": "failed"}).context["cl"].result_count == 1
        assert admin_client.get(URL, {"q": "ghost@acme"}).context["cl"].result_count == 1
        assert admin_client.get(URL, {"q": "Password"}).context["cl"].result_count == 1

    def test_the_detail_page_is_read_only_and_hides_the_body(self, admin_client):
        pk = queue_email(to="ops@acme.test", subject="Password reset", text="Use https://acme.test/reset/s3cr3t-t0ken",
                         html="<a href='https://acme.test/reset/s3cr3t-t0ken'>reset</a>")
        page = admin_client.get(f"{URL}{pk}/change/")
        assert page.status_code == 200
        assert "Password reset" in page.text and "multipart/alternative" in page.text
        assert "s3cr3t-t0ken" not in page.text
        assert admin_client.post(f"{URL}{pk}/change/", {"subject": "changed"}).status_code == 403
        assert admin_client.get(f"{URL}add/").status_code == 403
        assert OutboundEmail.objects.get(pk=pk).subject == "Password reset"


class EmailSettingsTests:
    def test_tls_and_ssl_together_stop_start_up(self, tmp_path):
        result = manage("check", tmp_path=tmp_path, DEBUG="true", EMAIL_USE_TLS="true", EMAIL_USE_SSL="true")
        assert result.returncode != 0
        assert "EMAIL_USE_TLS (STARTTLS) or EMAIL_USE_SSL" in result.stderr
