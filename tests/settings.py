"""The test run's settings: ``broxiva.settings`` read with the test environment below.

The suite runs against the machine's real PostgreSQL and Redis, but never against a
developer's data: it uses its own Redis databases (TEST_REDIS_DB / TEST_REDIS_QUEUE_DB,
default 14 and 15, flushed around every test) and a PostgreSQL test database that pytest-django
creates from TEST_DATABASE_URL.
"""

from __future__ import annotations

import os

os.environ["REDIS_DB"] = os.environ.get("TEST_REDIS_DB", "14")
os.environ["REDIS_QUEUE_DB"] = os.environ.get("TEST_REDIS_QUEUE_DB", "15")
for name in ("REDIS_URL", "QUEUE_PREFIX", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_PASSWORD"):
    os.environ.pop(name, None)
os.environ["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/broxiva")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ["DEBUG"] = "false"
os.environ["ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
os.environ["STATIC_MANIFEST"] = "false"
os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"

from broxiva.settings import *  # noqa: E402,F403

SECURE_SSL_REDIRECT = False  # the test client and live server speak plain http
