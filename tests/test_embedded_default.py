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
def test_every_worker_runs_on_sqlite_without_keys(tmp_path, httpserver):
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
        BROXIVA_VAR_DIR=str(tmp_path / "var"),
    )

    done = subprocess.run([sys.executable, "-m", "tests.embedded_flows"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["email"] == "sent"
    # The domain's verification was announced by e-mail and webhook too.
    assert result["webhook"] == [["domain.verified", "succeeded"], ["order.created", "succeeded"]]
    assert [status for _subject, status in result["emails"]] == ["sent", "sent"]
    assert (result["sync"], result["products"], result["run_error"]) == ("succeeded", ["Blue mug"], "")
    assert [tuple(t[:3]) for t in result["translations"]] == [
        ("description", "fr", "AUTO_TRANSLATED"), ("title", "fr", "PUBLISHED")]  # published by the reviewer below
    assert result["translated_sample"] and result["translated_sample"] != "Blue mug"
    assert result["domain"] == ["shop.demo.test", "verified", 1]
    # Two URLs (en, and fr now that its title is published) in files that exist under var/.
    assert result["sitemaps"] == ["succeeded", 2, True]
    assert result["sitemap_location"].startswith(str(tmp_path))
