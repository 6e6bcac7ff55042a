from __future__ import annotations

import pytest

from tests.translations.conftest import ANTHROPIC_KEY
from tests.translations.llm_server import LLMServer


@pytest.fixture(autouse=True)
def sitemap_storage(settings, tmp_path):
    """Every test stores its sitemaps in its own directory (the embedded default's backend)."""
    location = tmp_path / "sitemaps"
    settings.STORAGES = {
        **settings.STORAGES,
        "sitemaps": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(location)}},
    }
    settings.SITEMAP_STORAGE_URL = ""
    settings.INDEXNOW_KEY = ""
    settings.STOREFRONT_HOST_TEMPLATE = "{slug}.broxiva.com"
    return location


@pytest.fixture
def llm(settings):
    """The translations app's local LLM server, so translations are made by its own services."""
    server = LLMServer()
    settings.ANTHROPIC_API_KEY = ANTHROPIC_KEY
    settings.ANTHROPIC_BASE_URL = server.url
    settings.ANTHROPIC_MODEL = "claude-test"
    settings.OPENAI_API_KEY = ""
    settings.TRANSLATION_PROVIDERS = ["anthropic"]
    settings.ANTHROPIC_RPM = 0
    settings.TRANSLATION_HTTP_TIMEOUT = 5
    settings.TRANSLATION_QUALITY_JUDGE = False
    yield server
    server.close()


@pytest.fixture
def publisher(django_user_model):
    return django_user_model.objects.create_superuser("pat", "pat@example.test", "correct horse battery")


@pytest.fixture
def initech(db):
    """A one-locale shop, for the big catalogue."""
    from broxiva.models import Tenant

    return Tenant.objects.create(slug="initech", name="Initech", default_locale="en", enabled_locales=["en"])
