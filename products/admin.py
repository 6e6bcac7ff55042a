"""Staff pages: connections (secrets write-only, "sync now"), products, runs and conflicts."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from broxiva.admin import ReadOnly
from products.errors import SyncError
from products.models import Category, Product, SourceConnection, SyncConflict, SyncRun, Variant

KEEP = "Leave empty to keep the stored value. Stored values are never shown."


class SourceConnectionForm(forms.ModelForm):
    """Credentials and the webhook secret are write-only: the form never renders what is stored."""

    new_credentials = forms.CharField(
        required=False,
        label="Credentials (JSON)",
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text='Shopify {"access_token"}; WooCommerce {"consumer_key", "consumer_secret"}; BigCommerce '
        '{"access_token", "store_hash"}; custom feed optionally {"token"}. ' + KEEP,
    )
    base_url = forms.URLField(
        max_length=500, assume_scheme="https", help_text="The shop's base URL (a custom feed: the feed's URL)"
    )
    new_webhook_secret = forms.CharField(
        required=False,
        label="Webhook secret",
        widget=forms.PasswordInput(render_value=False),
        help_text=KEEP,
    )

    class Meta:
        model = SourceConnection
        fields = ("tenant", "name", "source", "base_url", "currency", "conflict_resolution", "is_active")

    def clean_new_credentials(self) -> dict[str, Any] | None:
        raw = self.cleaned_data.get("new_credentials", "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise forms.ValidationError('Enter a JSON object, e.g. {"access_token": "…"}.') from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise forms.ValidationError("Enter a JSON object of strings.")
        return value

    def save(self, commit: bool = True) -> SourceConnection:
        connection = super().save(commit=False)
        if self.cleaned_data.get("new_credentials") is not None:
            connection.credentials = self.cleaned_data["new_credentials"]
        if self.cleaned_data.get("new_webhook_secret"):
            connection.webhook_secret = self.cleaned_data["new_webhook_secret"]
        if commit:
            connection.save()
        return connection


class RecentRunInline(admin.TabularInline):
    model = SyncRun
    fields = (
        "created_at",
        "mode",
        "trigger",
        "status",
        "created",
        "updated",
        "unchanged",
        "archived",
        "conflicts",
        "errors",
        "error",
    )
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "recent runs"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).order_by("-created_at")


@admin.register(SourceConnection)
class SourceConnectionAdmin(admin.ModelAdmin):
    form = SourceConnectionForm
    list_display = (
        "id",
        "tenant",
        "source",
        "name",
        "base_url",
        "is_active",
        "conflict_resolution",
        "last_synced_at",
        "has_credentials",
        "has_webhook_secret",
    )
    list_filter = ("source", "is_active", "tenant")
    search_fields = ("name", "base_url", "tenant__slug")
    readonly_fields = (
        "last_synced_at",
        "sync_cursor",
        "has_credentials",
        "has_webhook_secret",
        "created_at",
        "updated_at",
    )
    fields = (
        "tenant",
        "name",
        "source",
        "base_url",
        "currency",
        "conflict_resolution",
        "is_active",
        "new_credentials",
        "has_credentials",
        "new_webhook_secret",
        "has_webhook_secret",
        "last_synced_at",
        "sync_cursor",
        "created_at",
        "updated_at",
    )
    inlines = [RecentRunInline]
    actions = ["sync_full", "sync_delta", "sync_inventory"]

    @admin.display(boolean=True, description="credentials set")
    def has_credentials(self, obj: SourceConnection) -> bool:
        return bool(obj.credentials)

    @admin.display(boolean=True, description="webhook secret set")
    def has_webhook_secret(self, obj: SourceConnection) -> bool:
        return bool(obj.webhook_secret)

    def _sync(self, request: HttpRequest, queryset: QuerySet, mode: str) -> None:
        from products.services import start_sync

        started, refused = [], []
        for connection in queryset:
            try:
                started.append(start_sync(connection_id=connection.pk, mode=mode).pk)
            except SyncError as exc:
                refused.append(str(exc))
        if started:
            self.message_user(request, f"{mode} sync queued: run(s) {', '.join(map(str, started))}.", messages.SUCCESS)
        for text in refused:
            self.message_user(request, text, messages.WARNING)

    @admin.action(description="Sync now: full")
    def sync_full(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._sync(request, queryset, "full")

    @admin.action(description="Sync now: delta")
    def sync_delta(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._sync(request, queryset, "delta")

    @admin.action(description="Sync now: inventory only")
    def sync_inventory(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._sync(request, queryset, "inventory_only")


class VariantInline(admin.TabularInline):
    model = Variant
    fields = ("external_id", "sku", "title", "price", "inventory_quantity")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "external_id",
        "connection",
        "status",
        "price",
        "currency",
        "inventory_quantity",
        "source_updated_at",
        "updated_at",
    )
    list_filter = ("status", "connection__source", "tenant")
    search_fields = ("title", "=external_id", "variants__sku")
    list_select_related = ("connection",)
    readonly_fields = (
        "tenant",
        "connection",
        "external_id",
        "source_updated_at",
        "synced",
        "local_edited_at",
        "last_seen_run",
        "created_at",
        "updated_at",
    )
    filter_horizontal = ("categories",)
    inlines = [VariantInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # products come from their source


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "external_id", "connection")
    search_fields = ("name", "=external_id")
    readonly_fields = ("tenant", "connection", "external_id")


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "id",
        "connection",
        "mode",
        "trigger",
        "status",
        "created_at",
        "finished_at",
        "pages",
        "created",
        "updated",
        "unchanged",
        "archived",
        "conflicts",
        "errors",
    )
    list_filter = ("status", "mode", "trigger", "connection__source")
    search_fields = ("=id", "connection__name", "error")
    date_hierarchy = "created_at"
    deletable = True  # staff with the delete permission may clear them


@admin.register(SyncConflict)
class SyncConflictAdmin(admin.ModelAdmin):
    list_display = ("id", "product", "field", "local_value", "source_value", "status", "resolution", "created_at")
    list_filter = ("status", "field", "resolution")
    search_fields = ("product__title", "=product__external_id")
    list_select_related = ("product",)
    readonly_fields = (
        "product",
        "run",
        "field",
        "local_value",
        "source_value",
        "status",
        "resolution",
        "created_at",
        "resolved_at",
    )
    actions = ["keep_local", "take_source"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def _resolve(self, request: HttpRequest, queryset: QuerySet, resolution: str) -> None:
        from products.services import resolve_conflict

        done = 0
        for conflict in queryset.filter(status=SyncConflict.Status.OPEN):
            resolve_conflict(conflict_id=conflict.pk, resolution=resolution)
            done += 1
        self.message_user(
            request,
            f"{done} conflict(s) resolved: {resolution.replace('_', ' ')}.",
            messages.SUCCESS if done else messages.WARNING,
        )

    @admin.action(description="Keep local value", permissions=["change"])
    def keep_local(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._resolve(request, queryset, SyncConflict.Resolution.KEEP_LOCAL)

    @admin.action(description="Take source value", permissions=["change"])
    def take_source(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._resolve(request, queryset, SyncConflict.Resolution.TAKE_SOURCE)
