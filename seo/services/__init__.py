"""Services of the seo app: sitemap generation (``generate``), its catalogue readers and writers,
and the IndexNow announcement."""

from __future__ import annotations

from seo.services.generate import current_generation, generate_sitemaps, purge_older, sitemaps_storage

__all__ = ["current_generation", "generate_sitemaps", "purge_older", "sitemaps_storage"]
