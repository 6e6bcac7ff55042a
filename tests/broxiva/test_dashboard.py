"""The django-rq dashboard is for operators (django_rq.admin, the Operators group), not all staff."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.urls import get_resolver

from broxiva.dashboard import OPERATORS_GROUP, ensure_operators_group
from broxiva.queues import get_queue
from tests.broxiva.ops_helpers import fill_queue

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # noqa: S105




@pytest.fixture
def reviewer(django_user_model):
    """Staff who reviews translations in the admin: no business in the job dashboard."""
    return django_user_model.objects.create_user("rita", "rita@broxiva.test", PASSWORD, is_staff=True)


def queue_index(name: str) -> int:
    return sorted(django_settings.RQ_QUEUES).index(name)


class DashboardAccessTests:
    def test_it_lets_an_operator_in_through_the_operators_group(self, client, operator):
        fill_queue("email", 2)
        client.force_login(operator)

        home = client.get("/django-rq/")
        jobs = client.get(f"/django-rq/queues/{queue_index('email')}/")

        assert home.status_code == 200 and "fx-refresh" in home.content.decode()
        assert jobs.status_code == 200

    def test_it_refuses_staff_who_are_not_operators_on_every_view(self, client, reviewer):
        [job_id] = fill_queue("email", 1, args=("secret-argument",))
        index = queue_index("email")
        client.force_login(reviewer)

        for path in ("/django-rq/", f"/django-rq/queues/{index}/", f"/django-rq/queues/{index}/failed/",
                     f"/django-rq/queues/{index}/{job_id}/", f"/django-rq/workers/{index}/",
                     "/django-rq/stats.json", "/django-rq/metrics"):
            response = client.get(path)
            assert response.status_code == 403, path
            assert b"secret-argument" not in response.content
        emptied = client.post(f"/django-rq/queues/{index}/empty/", {"post": "yes"})
        deleted = client.post(f"/django-rq/queues/{index}/{job_id}/delete/", {"post": "yes"})

        assert (emptied.status_code, deleted.status_code) == (403, 403)
        assert get_queue("email").job_ids == [job_id]

    def test_it_sends_anonymous_visitors_to_the_admin_login(self, client):
        response = client.get("/django-rq/")

        assert response.status_code == 302 and "/admin/login/" in response["Location"]

    def test_it_gates_every_dashboard_url_including_ones_a_django_rq_upgrade_adds(self):
        [dashboard] = [p for p in get_resolver().url_patterns if str(p.pattern) == "django-rq/"]

        ungated = [str(p.pattern) for p in dashboard.url_patterns if not getattr(p.callback, "operator_gate", False)]

        assert len(dashboard.url_patterns) > 20 and ungated == []

    def test_it_has_no_second_entrance_under_the_admin(self, client, reviewer):
        client.force_login(reviewer)

        assert client.get("/admin/django_rq/dashboard/").status_code == 404


class AdminIndexTests:
    def test_it_links_the_dashboard_for_operators_only(self, client, operator, reviewer):
        client.force_login(operator)
        assert "Job queues (django-rq dashboard)" in client.get("/admin/").content.decode()

        client.force_login(reviewer)
        page = client.get("/admin/")
        assert page.status_code == 200 and "django-rq" not in page.content.decode()


class OperatorsGroupTests:
    def test_migrate_creates_the_group_with_django_rqs_dashboard_permission(self):
        group = Group.objects.get(name=OPERATORS_GROUP)

        assert [(p.content_type.app_label, p.codename) for p in group.permissions.all()] == [("django_rq", "admin")]

    def test_it_puts_the_group_back_without_duplicating_it(self):
        Group.objects.filter(name=OPERATORS_GROUP).delete()

        ensure_operators_group()
        ensure_operators_group()

        assert Group.objects.get(name=OPERATORS_GROUP).permissions.get().codename == "admin"
