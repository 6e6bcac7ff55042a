from __future__ import annotations

from django.contrib import admin

from broxiva.models import Alert, Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "default_locale", "default_currency", "is_active", "contact_email")
    list_filter = ("is_active", "default_locale", "default_currency")
    search_fields = ("slug", "name", "contact_email")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_at", "updated_at")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Alerts are a record of what was sent: listed and filtered, never edited."""

    list_display = ("created_at", "severity", "source", "subject", "email_status", "webhook_status")
    list_filter = ("severity", "source", "email_status", "webhook_status", "created_at")
    search_fields = ("subject", "body")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Alert._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
