from __future__ import annotations

import warnings

import pytest

from tests.workers import flush_test_redis, stop_leftover_workers


@pytest.fixture(autouse=True)
def clean_redis():
    """Every test starts and ends with empty test Redis databases."""
    flush_test_redis()
    yield
    flush_test_redis()


@pytest.fixture(autouse=True)
def no_leftover_workers():
    """Stop any worker a test started and left running, so it cannot run the next tests' jobs."""
    yield
    for command in stop_leftover_workers():
        warnings.warn(f"a test left a worker running; stopped it: {command}", stacklevel=1)


@pytest.fixture
def acme(db):
    from broxiva.models import Tenant

    return Tenant.objects.create(
        slug="acme", name="Acme Corp", default_locale="en", enabled_locales=["en", "fr", "de"],
        default_currency="USD", enabled_currencies=["USD", "EUR"], contact_email="ops@acme.test",
    )


@pytest.fixture
def globex(db):
    from broxiva.models import Tenant

    return Tenant.objects.create(
        slug="globex", name="Globex", default_locale="ja", enabled_locales=["ja", "en"],
        default_currency="JPY", enabled_currencies=["JPY"], contact_email="it@globex.test",
    )


@pytest.fixture
def operator(django_user_model):
    """Staff in the Operators group (the dashboard and the Operations page), not a superuser: olga."""
    from django.contrib.auth.models import Group

    from broxiva.dashboard import OPERATORS_GROUP, ensure_operators_group

    ensure_operators_group()  # post_migrate creates it; a transactional test's flush may have emptied the table
    user = django_user_model.objects.create_user("olga", "olga@broxiva.test", "correct horse battery", is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    return user
