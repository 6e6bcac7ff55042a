from __future__ import annotations

from django.contrib import admin

from broxiva.models import Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "default_locale", "default_currency", "is_active", "contact_email")
    list_filter = ("is_active", "default_locale", "default_currency")
    search_fields = ("slug", "name", "contact_email")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_at", "updated_at")
