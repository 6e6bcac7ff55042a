"""The provider SDKs load on first use, not when a web or worker process starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from translations.providers import _lazy

STARTUP = """
import os, sys
import django
django.setup()
from django.urls import resolve
resolve("/admin/")  # the URLconf, hence every admin module and the services they import
import translations.services, translations.providers  # noqa: E401
print(",".join(m for m in ("anthropic", "openai") if m in sys.modules))
"""


def test_django_setup_does_not_import_the_provider_sdks():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run([sys.executable, "-c", STARTUP], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported at start-up: {done.stdout.strip()}"


def test_lazy_module_imports_on_first_attribute_and_fails_clearly():
    json_module = _lazy.LazyModule("json")
    assert json_module.dumps([1]) == "[1]"
    missing = _lazy.LazyModule("no_such_module_for_broxiva")
    with pytest.raises(ModuleNotFoundError):
        missing.anything  # noqa: B018
