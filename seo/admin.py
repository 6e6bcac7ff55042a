"""Admin: the shop's pages, and the generations list with a "regenerate now" action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from broxiva.admin import ReadOnly
from seo.models import Page, SitemapGeneration


@admin.register(Page)
class PageAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "tenant", "locales", "is_published", "updated_at")
    list_filter = ("is_published", "tenant")
    search_fields = ("title", "slug")


@admin.register(SitemapGeneration)
class SitemapGenerationAdmin(ReadOnly, admin.ModelAdmin):  # a generation is a record: only the service writes one
    list_display = (
        "id", "tenant", "status", "published", "started_at", "duration_ms", "url_count", "file_count", "bytes",
        "indexnow_status", "indexnow_submitted", "indexnow_pending",
    )
    list_filter = ("status", "published", "indexnow_status", "tenant")
    search_fields = ("=tenant__slug", "=job_id")
    ordering = ("-id",)
    actions = ["regenerate_now"]
    readonly_fields = [f.name for f in SitemapGeneration._meta.fields]

    @admin.display(description="files")
    def file_count(self, obj: SitemapGeneration) -> int:
        return len(obj.files)

    def has_regenerate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("seo.view_sitemapgeneration") and request.user.is_staff

    @admin.action(description="Regenerate now (the selected rows' tenants)", permissions=["regenerate"])
    def regenerate_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        from seo.jobs import request_generation

        tenant_ids = sorted(set(queryset.values_list("tenant_id", flat=True)))
        for tenant_id in tenant_ids:
            request_generation(tenant_id=tenant_id)
        self.message_user(request, f"Sitemap generation queued for {len(tenant_ids)} tenant(s).", messages.SUCCESS)
