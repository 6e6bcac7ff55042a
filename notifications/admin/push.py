"""Admin of push devices (keys and tokens masked) and of push deliveries (read-only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from broxiva.admin import ReadOnly
from notifications.models import Device, PushDelivery


def mask(value: str) -> str:
    """Show enough of a key or token to tell two apart, never enough to use it."""
    if not value:
        return "—"
    return f"{value[:4]}…{value[-4:]} ({len(value)} characters)" if len(value) > 12 else "…"


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "user_ref", "platform", "endpoint_short", "is_active", "last_error_short",
                    "updated_at")
    list_filter = ("platform", "is_active", "tenant")
    search_fields = ("=id", "user_ref", "endpoint")
    list_select_related = ("tenant",)
    fields = ("tenant", "user_ref", "platform", "endpoint", "p256dh_masked", "auth_masked", "token_masked",
              "is_active", "last_error", "deactivated_at", "created_at", "updated_at")
    readonly_fields = ("tenant", "user_ref", "platform", "endpoint", "p256dh_masked", "auth_masked", "token_masked",
                       "last_error", "deactivated_at", "created_at", "updated_at")
    actions = ["deactivate", "reactivate"]

    @admin.display(description="endpoint")
    def endpoint_short(self, obj: Device) -> str:
        return obj.endpoint[:60] + ("…" if len(obj.endpoint) > 60 else "") if obj.endpoint else "—"

    @admin.display(description="last error")
    def last_error_short(self, obj: Device) -> str:
        return obj.last_error[:80]

    @admin.display(description="p256dh")
    def p256dh_masked(self, obj: Device) -> str:
        return mask(obj.p256dh)

    @admin.display(description="auth")
    def auth_masked(self, obj: Device) -> str:
        return mask(obj.auth)

    @admin.display(description="token")
    def token_masked(self, obj: Device) -> str:
        return mask(obj.token)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # devices come from the clients (notifications.services.register_device)

    @admin.action(description="Deactivate the selected devices")
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        from notifications.services.push import deactivate_device

        count = sum(deactivate_device(device_id=pk, reason=f"deactivated by {request.user} in the admin")
                    for pk in queryset.values_list("id", flat=True))
        self.message_user(request, f"{count} device(s) deactivated.", messages.SUCCESS)

    @admin.action(description="Reactivate the selected devices")
    def reactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(is_active=False).update(is_active=True, last_error="", deactivated_at=None)
        self.message_user(request, f"{count} device(s) reactivated.", messages.SUCCESS)


@admin.register(PushDelivery)
class PushDeliveryAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("id", "tenant", "user_ref", "platform", "title", "status", "attempts", "sent_at", "created_at")
    list_filter = ("status", "device__platform", "tenant", "created_at")
    search_fields = ("=id", "title", "key", "device__user_ref")
    date_hierarchy = "created_at"
    list_select_related = ("tenant", "device")
    readonly_fields = [field.name for field in PushDelivery._meta.fields]

    @admin.display(description="user", ordering="device__user_ref")
    def user_ref(self, obj: PushDelivery) -> str:
        return obj.device.user_ref

    @admin.display(description="platform", ordering="device__platform")
    def platform(self, obj: PushDelivery) -> str:
        return obj.device.platform
