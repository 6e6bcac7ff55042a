"""The review screen through Django's test client: list, filters, search, side-by-side page,
buttons and bulk actions, each checked against the reviewer's permissions on the server."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from tests.translations.helpers import request, run
from tests.translations.llm_server import translated
from translations import services
from translations.models import Translation

S = Translation.Status
pytestmark = pytest.mark.django_db
LIST = "/admin/translations/translation/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _do(pk: int, action: str) -> str:
    return reverse("admin:translations_translation_do", args=[pk, action])


@pytest.fixture
def rows(acme, globex, providers):
    good = request(acme, "Red cotton shirt", entity="p-1")
    run(good)
    providers.script("anthropic", translated("anthropic", lambda out: [out[0].replace("⟦2⟧", "")]))
    broken = request(
        globex,
        "<p>Soft <b>wool</b> scarf</p>",
        entity="g-1",
        content_type="product_description",
        field="description",
        target="de",
    )
    run(broken)
    draft = request(acme, "Blue jeans", entity="p-2")
    return {"good": good, "broken": broken, "draft": draft}


def test_the_reviewers_group_exists_with_the_review_permission():
    group = Group.objects.get(name="Translation reviewers")
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert "approve_translation" in codenames and "view_translation" in codenames
    assert "publish_translation" not in codenames


def test_it_lists_filters_and_searches(rows, reviewer):
    client = _client(reviewer)
    page = client.get(LIST).content.decode()
    assert "Red cotton shirt" in page and "wool" in page and "Blue jeans" in page
    for query, present, absent in [
        ("?status__exact=DRAFT", "Blue jeans", "Red cotton"),
        ("?needs_review__exact=1", "wool", "Red cotton"),
        ("?flag=formatting", "wool", "Red cotton"),
        ("?flag=none", "Red cotton", "wool"),
        ("?target_locale__exact=de", "wool", "Red cotton"),
        ("?content_type__exact=product_description", "wool", "Blue jeans"),
        (f"?tenant__id__exact={rows['good'].tenant_id}", "Red cotton", "wool"),
        ("?q=scarf", "wool", "Red cotton"),
        ("?q=%C2%ABfr%C2%BB+Red", "Red cotton", "wool"),  # search in the translation
    ]:
        body = client.get(LIST + query).content.decode()
        assert present in body and absent not in body, query


def test_the_change_page_shows_source_and_translation_escaped_side_by_side(acme, providers, reviewer):
    providers.script("anthropic", translated("anthropic", lambda out: [out[0] + "<script>alert(1)</script>"]))
    row = request(acme, "<p>Soft <b>wool</b> <script>alert('src')</script></p>", content_type="page_body", field="body")
    run(row)
    body = _client(reviewer).get(reverse("admin:translations_translation_change", args=[row.pk])).content.decode()
    assert "&lt;p&gt;Soft &lt;b&gt;wool&lt;/b&gt;" in body  # HTML shown as code
    assert "<script>alert('src')" not in body and "&lt;script&gt;alert(&#x27;src&#x27;)" in body
    assert 'id="tr-source"' in body and 'id="tr-translation"' in body and 'id="tr-flags"' in body
    assert "HTML the source does not have was removed" in body or "tags" in body
    assert 'value="Approve"' in body and 'value="Publish"' not in body  # not approved yet, and no permission
    # The text fields have labels (screen readers, get_by_label): the reason and the edit box.
    assert '<label for="tr-reject-reason">Reason</label>' in body and 'id="tr-reject-reason"' in body
    assert '<label for="tr-edit">Edit the translation</label>' in body and 'id="tr-edit"' in body


def test_buttons_move_the_row_and_permissions_are_checked_on_the_server(rows, reviewer, publisher):
    pk = rows["good"].pk
    reviewer_client = _client(reviewer)
    assert reviewer_client.get(_do(pk, "approve")).status_code == 405  # POST only
    response = reviewer_client.post(_do(pk, "approve"))
    assert response.status_code == 302 and Translation.objects.get(pk=pk).status == S.VENDOR_APPROVED
    body = reviewer_client.get(reverse("admin:translations_translation_change", args=[pk])).content.decode()
    assert 'value="Publish"' not in body  # hidden for a reviewer...
    assert reviewer_client.post(_do(pk, "publish")).status_code == 403  # ...and refused on the server
    assert Translation.objects.get(pk=pk).status == S.VENDOR_APPROVED

    publisher_client = _client(publisher)
    assert (
        'value="Publish"'
        in publisher_client.get(reverse("admin:translations_translation_change", args=[pk])).content.decode()
    )
    publisher_client.post(_do(pk, "publish"))
    row = Translation.objects.get(pk=pk)
    assert row.status == S.PUBLISHED and row.published_text == "«fr» Red cotton shirt" and row.published_by == publisher


def test_a_refused_move_is_reported_not_applied(rows, publisher):
    client = _client(publisher)
    response = client.post(_do(rows["draft"].pk, "approve"), follow=True)
    assert "Approve refused: cannot move a translation from DRAFT to VENDOR_APPROVED" in response.content.decode()
    response = client.post(_do(rows["good"].pk, "reject"), {"reason": ""}, follow=True)
    assert "needs a reason" in response.content.decode()
    assert Translation.objects.get(pk=rows["good"].pk).status == S.AUTO_TRANSLATED


def test_reject_edit_and_retranslate_buttons(rows, publisher, django_capture_on_commit_callbacks):
    client = _client(publisher)
    pk = rows["broken"].pk
    client.post(_do(pk, "edit"), {"text": "<p>Weicher <b>Woll</b>schal</p>"})
    row = Translation.objects.get(pk=pk)
    assert row.status == S.AUTO_TRANSLATED and not row.needs_review and row.reviewed_by == publisher
    client.post(_do(pk, "reject"), {"reason": "wrong product"})
    assert Translation.objects.get(pk=pk).status == S.REJECTED
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_do(pk, "retranslate"))
    assert Translation.objects.get(pk=pk).status == S.DRAFT


def test_csrf_is_enforced(rows, publisher):
    client = Client(enforce_csrf_checks=True)
    client.force_login(publisher)
    assert client.post(_do(rows["good"].pk, "approve")).status_code == 403
    assert Translation.objects.get(pk=rows["good"].pk).status == S.AUTO_TRANSLATED


def test_bulk_approve_and_publish_from_the_list_report_rows_that_cannot_move(rows, publisher):
    client = _client(publisher)
    ids = [str(r.pk) for r in rows.values()]
    response = client.post(LIST, {"action": "approve_selected", "_selected_action": ids}, follow=True)
    body = response.content.decode()
    assert "1 translation(s) approved." in body
    assert "Could not approve 2" in body
    assert f"#{rows['draft'].pk} product_title p-2.title en→fr" in body  # named
    assert f"#{rows['broken'].pk} product_description g-1.description en→de" in body
    response = client.post(LIST, {"action": "publish_selected", "_selected_action": ids}, follow=True)
    assert "1 translation(s) published." in response.content.decode()
    assert Translation.objects.get(pk=rows["good"].pk).status == S.PUBLISHED
    assert Translation.objects.get(pk=rows["draft"].pk).status == S.DRAFT


def test_a_reviewer_without_the_publish_permission_cannot_publish_from_the_list(rows, reviewer, publisher):
    services.approve(rows["good"].pk, user=publisher)
    client = _client(reviewer)
    page = client.get(LIST).content.decode()
    assert "approve_selected" in page and "publish_selected" not in page
    response = client.post(
        LIST, {"action": "publish_selected", "_selected_action": [str(rows["good"].pk)]}, follow=True
    )
    assert Translation.objects.get(pk=rows["good"].pk).status == S.VENDOR_APPROVED
    assert response.status_code == 200


def test_bulk_reject(rows, reviewer):
    response = _client(reviewer).post(
        LIST, {"action": "reject_selected", "_selected_action": [str(rows["good"].pk)]}, follow=True
    )
    assert "1 translation(s) rejected." in response.content.decode()
    assert Translation.objects.get(pk=rows["good"].pk).events.last().note == "rejected from the list"


def test_staff_without_translation_permissions_see_nothing(rows, django_user_model):
    staff = django_user_model.objects.create_user("sam", is_staff=True)
    client = _client(staff)
    assert client.get(LIST).status_code == 403
    assert client.post(_do(rows["good"].pk, "approve")).status_code == 403
