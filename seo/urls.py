"""Per-tenant-host URLs: /sitemap.xml and its files, /robots.txt, the IndexNow key file.

The paths must match ``seo.middleware.PER_HOST_PATH``, which admits tenant hosts to them.
"""

from __future__ import annotations

from django.urls import path, re_path

from seo import views

urlpatterns = [
    path("sitemap.xml", views.sitemap_index, name="seo-sitemap-index"),
    re_path(r"^sitemap-(?P<part>[1-9][0-9]*)\.xml$", views.sitemap_index, name="seo-sitemap-index-part"),
    re_path(r"^sitemaps/(?P<generation_id>[0-9]+)/(?P<name>[A-Za-z0-9_.-]+)$", views.sitemap_file,
            name="seo-sitemap-file"),
    path("robots.txt", views.robots_txt, name="seo-robots"),
    re_path(r"^(?P<key>[A-Za-z0-9-]{8,128})\.txt$", views.indexnow_key, name="seo-indexnow-key"),
]
