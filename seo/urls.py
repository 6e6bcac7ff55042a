"""Per-tenant-host URLs: /sitemap.xml and its files, /robots.txt, the IndexNow key file."""

from __future__ import annotations

urlpatterns: list = []
