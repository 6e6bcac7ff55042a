"""Admin of outbound webhooks: endpoints (secret never shown), messages, deliveries with their attempts.

Deliveries and attempts are history written by the dispatcher: read-only here. Staff act through
actions that call the services: rotate an endpoint's secret, send it a test event, resend a
delivery (a new delivery of the same message, same ``webhook-id``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from broxiva.admin import ReadOnly
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from notifications.services import webhooks as service


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "url", "description", "is_active", "signing", "disabled_at", "created_at")
    list_filter = ("is_active", "tenant")
    search_fields = ("url", "description", "tenant__slug")
    # ``secret`` and ``previous_secret`` are not editable, so no form ever renders them; the page
    # shows only whether a rotation overlap is running.
    fields = (
        "tenant",
        "url",
        "description",
        "event_types",
        "is_active",
        "disabled_reason",
        "disabled_at",
        "signing",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("signing", "disabled_at", "created_at", "updated_at")
    actions = ["rotate_secret", "send_test_event"]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "url":
            kwargs["assume_scheme"] = "https"  # a URL typed without a scheme is an https one
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="secret")
    def signing(self, obj: WebhookEndpoint) -> str:
        if not obj.pk:
            return "generated when saved"
        text = "whsec_•••••••• (hidden)"
        if obj.previous_secret and obj.previous_secret_expires_at and obj.previous_secret_expires_at > timezone.now():
            text += f"; previous secret also signs until {obj.previous_secret_expires_at:%Y-%m-%d %H:%M} UTC"
        return text

    @admin.action(description="Rotate secret (the previous one keeps signing during the overlap)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet) -> None:
        for endpoint in queryset:
            service.rotate_endpoint_secret(endpoint.id)  # the new secret is returned, never displayed
        self.message_user(request, f"{queryset.count()} endpoint secret(s) rotated.", messages.SUCCESS)

    @admin.action(description="Send test event")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet) -> None:
        sent, refused = [], []
        for endpoint in queryset:
            try:
                sent.append(service.send_test_event(endpoint_id=endpoint.id))
            except ValueError as exc:
                refused.append(str(exc))
        if sent:
            self.message_user(request, f"Test event sent: {', '.join(sent)}.", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, f"Not sent: {reason}", messages.WARNING)


class WebhookAttemptInline(ReadOnly, admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    fields = (
        "number",
        "created_at",
        "succeeded",
        "deferred",
        "status_code",
        "duration_ms",
        "error",
        "response_excerpt",
    )
    readonly_fields = fields
    ordering = ("id",)


class EventTypeFilter(admin.SimpleListFilter):
    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        types = WebhookMessage.objects.order_by().values_list("event_type", flat=True).distinct()[:100]
        return [(t, t) for t in sorted(types)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(message__event_type=self.value()) if self.value() else queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "id",
        "message_id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "last_error",
        "created_at",
    )
    list_filter = ("status", EventTypeFilter, ("endpoint__tenant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("=message__id", "endpoint__url")
    list_select_related = ("message", "endpoint__tenant")
    fields = (
        "message",
        "endpoint",
        "resend_of",
        "status",
        "attempts",
        "deferrals",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    @admin.display(description="event type", ordering="message__event_type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.message.event_type

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.add_webhookdelivery") or request.user.is_superuser

    @admin.action(description="Resend (a new delivery of the same message, same webhook-id)", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet) -> None:
        created, refused = 0, []
        for delivery in queryset:
            try:
                service.resend_delivery(delivery_id=delivery.id)
                created += 1
            except ValueError as exc:
                refused.append(str(exc))
        if created:
            self.message_user(request, f"{created} delivery(ies) queued again.", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, f"Not resent: {reason}", messages.WARNING)


@admin.register(WebhookMessage)
class WebhookMessageAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("id", "tenant", "event_type", "key", "created_at")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter), "event_type")
    search_fields = ("=id", "=key")
    fields = ("id", "tenant", "event_type", "key", "payload", "created_at")
    readonly_fields = fields
