"""Staff review in the admin (Django test client): list, filters, search, detail, actions."""

from __future__ import annotations

import pytest
from django.utils import timezone

from broxiva.queues import get_queue
from domains.models import TenantDomain
from notifications.models import WebhookMessage
from tests.domains.conftest import make_domain

pytestmark = pytest.mark.django_db
URL = "/admin/domains/tenantdomain/"


def test_it_lists_filters_and_searches(admin_client, acme, globex):
    make_domain(acme, "shop.example", checks=3)
    make_domain(acme, "xn--bcher-kva.example", "meta_tag", status="verified")
    make_domain(globex, "globex.example", "dns_cname", status="failed")
    page = admin_client.get(URL)
    assert page.status_code == 200 and page.context["cl"].result_count == 3
    for column in ("Status", "Method", "Checks", "Last checked at", "Next check at"):
        assert column in page.content.decode()
    assert admin_client.get(URL, {"status__exact": "verified"}).context["cl"].result_count == 1
    assert admin_client.get(URL, {"method__exact": "dns_cname"}).context["cl"].result_count == 1
    assert admin_client.get(URL, {"tenant__id__exact": globex.pk}).context["cl"].result_count == 1
    assert admin_client.get(URL, {"q": "shop"}).context["cl"].result_count == 1
    assert admin_client.get(URL, {"q": "Bücher"}).context["cl"].result_count == 1  # the IDN as typed


def test_the_detail_page_shows_the_record_escaped_the_findings_and_the_history(admin_client, acme):
    d = make_domain(acme, "shop.example", "meta_tag", token="tok-123")
    TenantDomain.objects.filter(pk=d.pk).update(last_check={
        "summary": "home page: meta broxiva-verification is '<script>x</script>' — does not match",
        "lookups": [{"name": "shop.example", "type": "A", "values": ["192.0.2.1"]}]})
    from domains.services import mark_failed

    mark_failed(d.pk, reason="tenant <b>asked</b>", actor="staff-ann")
    body = admin_client.get(f"{URL}{d.pk}/change/").content.decode()
    assert "&lt;meta name=&quot;broxiva-verification&quot; content=&quot;tok-123&quot;&gt;" in body
    assert "<script>x</script>" not in body and "&lt;script&gt;x&lt;/script&gt;" in body
    assert "192.0.2.1" in body
    assert "tenant &lt;b&gt;asked&lt;/b&gt;" in body and "staff-ann" in body
    assert admin_client.post(f"{URL}{d.pk}/change/", {"status": "verified"}).status_code in (302, 403)
    assert TenantDomain.objects.get(pk=d.pk).status == "failed"


def test_adding_a_domain_normalises_it_and_queues_the_first_check(admin_client, acme,
                                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the outbox pushes after the commit
        response = admin_client.post(f"{URL}add/",
                                     {"tenant": acme.pk, "domain": "Bücher.Example.", "method": "dns_txt"})
    assert response.status_code == 302
    d = TenantDomain.objects.get()
    assert d.domain == "xn--bcher-kva.example" and len(d.token) >= 22
    assert get_queue("domain-verification").job_ids == [f"domain-verify-{d.pk}"]
    page = admin_client.post(f"{URL}add/", {"tenant": acme.pk, "domain": "https://x.example/", "method": "dns_txt"})
    assert page.status_code == 200 and "is a URL" in page.content.decode()


def test_the_actions_verify_now_regenerate_the_token_and_mark_failed(admin_client, acme,
                                                                    django_capture_on_commit_callbacks):
    d = make_domain(acme, "shop.example", status="verified", verified_at=timezone.now(),
                    next_check_at=timezone.now() + timezone.timedelta(days=1))
    other = make_domain(acme, "other.example")
    get_queue("domain-verification").enqueue_call("domains.jobs.domain_verify_job", kwargs={"domain_id": other.pk},
                                                  job_id=f"domain-verify-{other.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(URL, {"action": "verify_now", "_selected_action": [d.pk]})
    assert get_queue("domain-verification").job_ids[0] == f"domain-verify-{d.pk}"
    assert TenantDomain.objects.get(pk=d.pk).verify_requested_at is not None

    old_token = d.token
    admin_client.post(URL, {"action": "regenerate_token", "_selected_action": [d.pk]})
    d.refresh_from_db()
    assert (d.status, d.verified_at) == ("pending", None) and d.token != old_token
    assert d.events.first().reason == "token regenerated" and d.events.first().actor == "admin"

    admin_client.post(URL, {"action": "mark_failed", "_selected_action": [d.pk]})
    d.refresh_from_db()
    assert d.status == "failed" and d.failure_reason == "marked failed by staff"
    assert WebhookMessage.objects.filter(event_type="domain.failed").count() == 1


def test_the_change_page_has_a_verify_now_button_that_queues_the_check_ahead(admin_client, acme,
                                                                           django_capture_on_commit_callbacks):
    d = make_domain(acme, "shop.example")
    other = make_domain(acme, "other.example")
    with django_capture_on_commit_callbacks(execute=True):
        get_queue("domain-verification").enqueue_call("domains.jobs.domain_verify_job", kwargs={"domain_id": other.pk},
                                                      job_id=f"domain-verify-{other.pk}")
    assert get_queue("domain-verification").job_ids == [f"domain-verify-{other.pk}"]
    page = admin_client.get(f"{URL}{d.pk}/change/").content.decode()
    form = f'<form method="post" action="{URL}{d.pk}/verify/">'
    assert form in page and '<button type="submit" id="domain-verify-now"' in page
    # Outside the admin's own form (a nested form is dropped by browsers): it comes before it.
    assert page.index(form) < page.index('id="tenantdomain_form"')
    assert admin_client.get(f"{URL}{d.pk}/verify/").status_code == 405  # a GET changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{URL}{d.pk}/verify/")
    assert response.status_code == 302 and response["Location"] == f"{URL}{d.pk}/change/"
    assert get_queue("domain-verification").job_ids == [f"domain-verify-{d.pk}", f"domain-verify-{other.pk}"]
    assert TenantDomain.objects.get(pk=d.pk).verify_requested_at is not None
    shown = admin_client.get(response["Location"]).content.decode()
    assert "Check requested for shop.example: a worker will check it as soon as one is free." in shown
    assert admin_client.post(f"{URL}999999/verify/").status_code == 404


def test_staff_who_may_only_view_domains_get_no_button_no_actions_and_a_403(client, django_user_model, acme):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("vic", "vic@example.test", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_tenantdomain"))
    d = make_domain(acme, "shop.example")
    client.force_login(viewer)
    page = client.get(f"{URL}{d.pk}/change/")
    assert page.status_code == 200 and "shop.example" in page.content.decode()
    assert "/verify/" not in page.content.decode() and "Verify now" not in page.content.decode()
    listing = client.get(URL).content.decode()
    for action in ("verify_now", "regenerate_token", "mark_failed"):
        assert f'value="{action}"' not in listing
    assert client.post(f"{URL}{d.pk}/verify/").status_code == 403
    refused = client.post(URL, {"action": "verify_now", "_selected_action": [d.pk]})
    assert refused.status_code in (200, 302)  # the admin ignores an action the user does not have
    d.refresh_from_db()
    assert d.verify_requested_at is None and get_queue("domain-verification").job_ids == []


def test_the_button_checks_the_csrf_token(acme, django_user_model):
    from django.test import Client

    django_user_model.objects.create_superuser("ann", "ann@example.test", "pw")
    d = make_domain(acme, "shop.example")
    client = Client(enforce_csrf_checks=True)
    client.login(username="ann", password="pw")
    assert client.post(f"{URL}{d.pk}/verify/").status_code == 403
    d.refresh_from_db()
    assert d.verify_requested_at is None
