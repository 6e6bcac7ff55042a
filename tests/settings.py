"""The test run's settings: ``broxiva.settings`` read with the test environment below.

The suite runs against the machine's real PostgreSQL and Redis, but never against a
developer's data, and each pytest process (``bin/test`` runs several with pytest-xdist; see
docs/testing.md) against data of its own:

- Redis: a pair of databases per process, flushed around every test. Serially (no xdist) they
  are TEST_REDIS_DB / TEST_REDIS_QUEUE_DB, default 14 and 15; xdist worker gwK gets 14-2K and
  15-2K, so four processes use DBs 8-15 and a developer's DBs 0-7 are never touched.
- PostgreSQL: pytest-django creates ``test_<name>`` from TEST_DATABASE_URL, suffixed ``_gwK``
  under xdist; tests.workers.worker_env hands that name to worker subprocesses.
- Files: BROXIVA_VAR_DIR (the SQLite file, admin passwords, file sitemaps) is a temporary
  directory of this process, removed when it exits, instead of the checkout's var/.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# pytest-xdist names its worker processes gw0, gw1, ...; unset when the suite runs serially.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _xdist_worker:
    _index = int(_xdist_worker.removeprefix("gw"))
    _cache_db, _queue_db = 14 - 2 * _index, 15 - 2 * _index
    if _cache_db < 8:
        raise RuntimeError(
            f"xdist worker {_xdist_worker} would use Redis DBs {_cache_db}/{_queue_db}: the suite keeps to DBs 8-15, "
            "so run at most 4 processes (bin/test -n 4)."
        )
    os.environ["REDIS_DB"], os.environ["REDIS_QUEUE_DB"] = str(_cache_db), str(_queue_db)
else:
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
# Worker subprocesses inherit the environment, so they share this process's directory; a child
# that imports these settings again keeps it too (and leaves its removal to this process). xdist
# workers inherit the controller's environment, hence the check on whose directory it is.
_var_owner = _xdist_worker or "serial"
if os.environ.get("BROXIVA_TEST_VAR_OWNER") != _var_owner or not os.environ.get("BROXIVA_VAR_DIR"):
    _var_dir = tempfile.mkdtemp(prefix=f"broxiva-test-var-{_var_owner}-")
    os.environ["BROXIVA_VAR_DIR"], os.environ["BROXIVA_TEST_VAR_OWNER"] = _var_dir, _var_owner
    atexit.register(shutil.rmtree, _var_dir, ignore_errors=True)

from broxiva.settings import *  # noqa: E402,F403

SECURE_SSL_REDIRECT = False  # the test client and live server speak plain http
