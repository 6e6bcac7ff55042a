"""The django-rq dashboard, for operators only.

django-rq 4.2 gates its views with ``staff_member_required`` alone, so any staff account (a
translation reviewer, say) could empty queues, delete and requeue jobs and read job arguments.
Here every dashboard view also requires django-rq's own permission ``django_rq.admin`` ("Access
admin page", on its table-less ``Dashboard`` model): superusers have it, and so does the
**Operators** group, which ``ensure_operators_group`` keeps in existence after every ``migrate``.
Making someone an operator is adding them to that group (or granting the permission) in the
admin; staff without it get 403.

Why these choices: the permission is django-rq's, so nothing of ours needs a migration; a
``post_migrate`` handler (not a data migration, not ``bootstrap``) creates the group in every
database, production included, and puts it back if someone deletes it. The URL patterns are
django-rq's own, each wrapped here, so a view a django-rq upgrade adds is gated too.
``RQ_SHOW_ADMIN_LINK`` is off: django-rq's second entrance under ``/admin/django_rq/`` wraps its
views in ``admin_view`` (staff only) and cannot be gated the same way without copying it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

OPERATOR_PERMISSION = "django_rq.admin"
OPERATORS_GROUP = "Operators"


def is_operator(user: Any) -> bool:
    """Return True if ``user`` may use the django-rq dashboard."""
    return bool(user is not None and user.is_active and user.is_staff and user.has_perm(OPERATOR_PERMISSION))


def operator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff log in as for the admin; staff who are not operators get 403."""

    @wraps(view)
    def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_operator(request.user):
            raise PermissionDenied("the job dashboard is for operators")
        try:
            return view(request, *args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # django-rq lets these through as a 500 page; an operator needs to read what is wrong.
            return _redis_unreachable(request, exc)

    gated.operator_gate = True  # type: ignore[attr-defined]  (tests check every dashboard URL has it)
    return staff_member_required(gated)


def _redis_unreachable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    from django.contrib import admin

    from broxiva.health import redis_error_message

    context = {**admin.site.each_context(request), "error": redis_error_message(exc)}
    return render(request, "broxiva/redis_unreachable.html", context, status=503)


def operator_or_token(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For django-rq's token views (stats.json, metrics): a session must be an operator's.

    Without a session they keep django-rq's own check (``RQ_API_TOKEN`` bearer token, unset by
    default), which would otherwise let any staff session through.
    """

    @wraps(view)
    def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not is_operator(user):
            raise PermissionDenied("the job dashboard is for operators")
        return view(request, *args, **kwargs)

    gated.operator_gate = True  # type: ignore[attr-defined]
    return gated


def urlpatterns() -> list:
    """django-rq's dashboard URL patterns, every view behind the operator gate."""
    from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

    api = get_api_urlpatterns()
    for pattern in api:
        pattern.callback = operator_or_token(pattern.callback)
    return api + get_admin_urlpatterns(view_wrapper=operator_required)


def ensure_operators_group(*, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """Create the Operators group with the dashboard permission (a ``post_migrate`` handler)."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    # django_rq's permission rows are created by auth's own post_migrate handler; make sure they
    # exist whatever order the handlers run in (idempotent).
    create_permissions(apps.get_app_config("django_rq"), verbosity=0, using=using)
    app_label, codename = OPERATOR_PERMISSION.split(".")
    permission = Permission.objects.using(using).get(content_type__app_label=app_label, codename=codename)
    group, _ = Group.objects.using(using).get_or_create(name=OPERATORS_GROUP)
    group.permissions.add(permission)
