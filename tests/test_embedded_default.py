"""Every worker on the embedded default: SQLite, no keys, console e-mail, pseudo-locale translator.

``bin/run`` runs on this default; these flows run there as a new user meets them, in a child
process whose database is an empty SQLite file (the suite's own PostgreSQL is not involved).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.workers import ROOT, worker_env


@pytest.mark.django_db
def test_email_webhooks_product_sync_and_translations_run_on_sqlite_without_keys(tmp_path, httpserver):
    httpserver.expect_request("/hooks").respond_with_data("ok")
    feed = {"products": [{"id": "mug-1", "title": "Blue mug", "description": "<p>A <b>blue</b> mug</p>",
                          "price": "12.50", "inventory_quantity": 3, "updated_at": "2026-11-01T08:00:00Z"}],
            "next": None}
    httpserver.expect_request("/feed.json").respond_with_json(feed)
    env = worker_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
        OUTBOUND_ALLOWED_NETWORKS="127.0.0.1/32",
        ANTHROPIC_API_KEY="", OPENAI_API_KEY="",
        EMBEDDED_RECEIVER_URL=httpserver.url_for("/hooks"),
        EMBEDDED_FEED_URL=httpserver.url_for("/feed.json"),
    )

    done = subprocess.run([sys.executable, "-m", "tests.embedded_flows"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["email"] == "sent"
    assert result["webhook"] == ["succeeded"]
    assert (result["sync"], result["products"], result["run_error"]) == ("succeeded", ["Blue mug"], "")
    assert [tuple(t[:3]) for t in result["translations"]] == [
        ("description", "fr", "AUTO_TRANSLATED"), ("title", "fr", "AUTO_TRANSLATED")]
    assert result["translated_sample"] and result["translated_sample"] != "Blue mug"
