from __future__ import annotations

import pytest

from tests.translations.llm_server import LLMServer

ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"
OPENAI_KEY = "sk-openai-test-fedcba9876543210"


@pytest.fixture
def llm():
    server = LLMServer()
    yield server
    server.close()


@pytest.fixture
def providers(settings, llm):
    """Both providers configured against the local server; pacing generous; no judge."""
    settings.ANTHROPIC_API_KEY = ANTHROPIC_KEY
    settings.ANTHROPIC_BASE_URL = llm.url
    settings.ANTHROPIC_MODEL = "claude-test"
    settings.OPENAI_API_KEY = OPENAI_KEY
    settings.OPENAI_BASE_URL = f"{llm.url}/v1"
    settings.OPENAI_MODEL = "gpt-test"
    settings.TRANSLATION_PROVIDERS = ["anthropic", "openai"]
    settings.ANTHROPIC_RPM = 0
    settings.OPENAI_RPM = 0
    settings.TRANSLATION_HTTP_TIMEOUT = 5
    settings.TRANSLATION_QUALITY_JUDGE = False
    return llm


@pytest.fixture
def no_keys(settings):
    settings.ANTHROPIC_API_KEY = ""
    settings.OPENAI_API_KEY = ""


def provider_env(llm: LLMServer, **extra: str) -> dict[str, str]:
    """Environment for a real worker process pointed at the local server."""
    from tests.workers import worker_env

    return worker_env(
        ANTHROPIC_API_KEY=ANTHROPIC_KEY,
        ANTHROPIC_BASE_URL=llm.url,
        OPENAI_API_KEY=OPENAI_KEY,
        OPENAI_BASE_URL=f"{llm.url}/v1",
        ANTHROPIC_RPM="0",
        OPENAI_RPM="0",
        TRANSLATION_HTTP_TIMEOUT="5",
        **extra,
    )


def reviewers_group():
    """The group the data migration creates; rebuilt the same way after a transactional test's flush."""
    from django.contrib.auth.models import Group, Permission

    group, created = Group.objects.get_or_create(name="Translation reviewers")
    if created:
        codenames = ("view_translation", "change_translation", "approve_translation", "view_translationevent")
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="translations", codename__in=codenames)
        )
    return group


@pytest.fixture
def reviewer(django_user_model):
    user = django_user_model.objects.create_user("rita", "rita@example.test", "correct horse battery", is_staff=True)
    user.groups.add(reviewers_group())
    return user


@pytest.fixture
def publisher(django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("paul", "paul@example.test", "correct horse battery", is_staff=True)
    user.groups.add(reviewers_group())
    user.user_permissions.add(Permission.objects.get(codename="publish_translation"))
    return user
