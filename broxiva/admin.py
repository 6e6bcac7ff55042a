from __future__ import annotations

from django.contrib import admin

from broxiva.models import Alert, OutboxJob, Tenant


class ReadOnly:
    """For admins and inlines of rows only the system writes: staff may look, never add or edit.

    Deleting is refused too unless ``deletable`` is set, which leaves it to the user's delete
    permission (records staff may clear, such as alerts).
    """

    deletable = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "default_locale", "default_currency", "is_active", "contact_email")
    list_filter = ("is_active", "default_locale", "default_currency")
    search_fields = ("slug", "name", "contact_email")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_at", "updated_at")


@admin.register(Alert)
class AlertAdmin(ReadOnly, admin.ModelAdmin):
    """Alerts are a record of what was sent: listed and filtered, never edited."""

    list_display = ("created_at", "severity", "source", "subject", "email_status", "webhook_status")
    list_filter = ("severity", "source", "email_status", "webhook_status", "created_at")
    search_fields = ("subject", "body")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Alert._meta.fields]
    deletable = True


@admin.register(OutboxJob)
class OutboxJobAdmin(ReadOnly, admin.ModelAdmin):
    """Jobs recorded in a transaction that Redis has not taken yet: what waits, since when, why.

    Read-only: the relay (``manage.py outbox_relay``) pushes them. Arguments are ids and plain
    values by the enqueue contract, so nothing secret is shown.
    """

    list_display = ("created_at", "queue", "func", "job_id", "attempts", "last_attempt_at", "last_error_short")
    list_filter = ("queue", "created_at")
    search_fields = ("job_id", "func")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in OutboxJob._meta.fields]
    deletable = True

    @admin.display(description="last error")
    def last_error_short(self, obj: OutboxJob) -> str:
        return obj.last_error[:120]
