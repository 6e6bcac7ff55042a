"""The shop's static pages and the record of each sitemap generation (``seo.services``)."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from broxiva.models import EachValidator, Tenant

_locale = RegexValidator(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", "Enter a locale such as en, en-US or pt-BR.")


class Page(models.Model):
    """A static page of a shop (about, shipping, …), in the locale(s) it is written in.

    ``locales`` lists the shop locales the page exists in; empty means the shop's default locale
    only. Its storefront path is ``STOREFRONT_URL_PATTERNS["page"]`` with its ``slug``.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="pages")
    slug = models.SlugField(max_length=200)
    title = models.CharField(max_length=255)
    locales = models.JSONField(default=list, blank=True, validators=[EachValidator(_locale)])
    is_published = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "slug"]
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="seo_page_unique_slug")]

    def __str__(self) -> str:
        return self.title or self.slug


class SitemapGeneration(models.Model):
    """One run of ``generate_sitemaps`` for a tenant: what it wrote and what it announced.

    ``files`` lists every sitemap file the generation's index points at, each
    ``{name, path, type, locale, urls, bytes, compressed_bytes, lastmod}`` (``path`` in the
    ``sitemaps`` storage; a file carried over from an earlier generation when only some types or
    locales were regenerated keeps its path). ``index_files`` are the index's storage paths, the
    first served as ``/sitemap.xml``. The tenant's current sitemap is its latest ``published``
    generation. ``announced_until`` is the IndexNow watermark: URLs changed up to then were
    announced (or refused for good); the next announcement sends those changed after it.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    class IndexNow(models.TextChoices):
        NOT_REQUESTED = "", "Not requested"
        SUBMITTED = "submitted", "Submitted"
        NOTHING = "nothing", "Nothing changed"
        REJECTED = "rejected", "Rejected (permanent)"
        PENDING = "pending", "Kept pending (429 or unreachable)"
        SKIPPED = "skipped", "Skipped"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="sitemap_generations")
    job_id = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    types = models.JSONField(default=list, blank=True, help_text="Types regenerated (products, categories, pages)")
    locales = models.JSONField(default=list, blank=True, help_text="Locales regenerated")
    upload_to_storage = models.BooleanField(default=True)
    published = models.BooleanField(default=False, help_text="Its index is the one /sitemap.xml serves")
    host = models.CharField(max_length=253, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    files = models.JSONField(default=list, blank=True)
    index_files = models.JSONField(default=list, blank=True)
    url_count = models.PositiveIntegerField(default=0, help_text="URLs written by this generation")
    bytes = models.PositiveBigIntegerField(default=0, help_text="Uncompressed bytes written")
    compressed_bytes = models.PositiveBigIntegerField(default=0)
    purged = models.BooleanField(default=False, help_text="Its files were removed after a newer generation")
    error = models.TextField(blank=True)
    ping_requested = models.BooleanField(default=False)
    indexnow_status = models.CharField(max_length=16, choices=IndexNow.choices, blank=True, default="")
    indexnow_submitted = models.PositiveIntegerField(default=0, help_text="URLs accepted by IndexNow")
    indexnow_pending = models.PositiveIntegerField(default=0, help_text="URLs kept for the next announcement")
    indexnow_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    indexnow_error = models.TextField(blank=True)
    announced_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # The Redis lock keeps generations of a tenant apart; this is the database's guard.
            models.UniqueConstraint(
                fields=["tenant"], condition=models.Q(status="running"), name="seo_one_running_generation_per_tenant"
            )
        ]
        indexes = [models.Index(fields=["tenant", "published", "-id"], name="seo_generation_current")]

    def __str__(self) -> str:
        return f"sitemaps {self.tenant_id} #{self.pk} {self.status}"

    def as_dict(self) -> dict[str, Any]:
        """The generation's record as a small JSON-serialisable dict (the job's result)."""
        return {
            "generation_id": self.pk,
            "tenant_id": self.tenant_id,
            "job_id": self.job_id,
            "status": self.status,
            "published": self.published,
            "host": self.host,
            "files": [{k: f[k] for k in ("name", "type", "locale", "urls", "bytes")} for f in self.files],
            "index_files": list(self.index_files),
            "urls": self.url_count,
            "bytes": self.bytes,
            "compressed_bytes": self.compressed_bytes,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "indexnow": {
                "status": self.indexnow_status,
                "submitted": self.indexnow_submitted,
                "pending": self.indexnow_pending,
                "http_status": self.indexnow_http_status,
                "error": self.indexnow_error,
            },
        }
