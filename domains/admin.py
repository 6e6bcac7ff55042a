"""Staff review of tenants' domains: status at a glance, what to publish, what the last check saw.

The row is written by the services only: the change page is read-only, and staff act through
the actions ("verify now", "regenerate token", "mark failed"), which record who did what in the
domain's history; the change page also has a "Verify now" button (a POST form of its own, CSRF
checked, the action's permission). Every action needs the change permission on domains: staff who
may only view see neither the actions nor the button, and a forged POST is refused (403).
Adding a domain goes through ``add_domain`` (normalised, first check queued).
"""

from __future__ import annotations

import json
from typing import Any

import idna
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from domains import services
from domains.models import TenantDomain
from domains.normalize import normalize_domain


class AddDomainForm(forms.ModelForm):
    class Meta:
        model = TenantDomain
        fields = ("tenant", "domain", "method")

    def clean_domain(self) -> str:
        name = normalize_domain(self.cleaned_data.get("domain", ""))
        if TenantDomain.objects.filter(domain=name).exists():
            raise ValidationError(f"{name} is already registered.")
        return name


@admin.register(TenantDomain)
class TenantDomainAdmin(admin.ModelAdmin):
    list_display = ("domain", "shown_name", "tenant", "status", "method", "checks", "last_checked_at",
                    "next_check_at", "verified_at")
    list_filter = ("status", "method", "tenant")
    search_fields = ("domain",)
    ordering = ("domain",)
    actions = ["verify_now", "regenerate_token", "mark_failed"]
    readonly_fields = ("tenant", "domain", "shown_name", "method", "status", "failure_reason", "instructions",
                       "checks", "consecutive_misses", "last_checked_at", "next_check_at", "verified_at",
                       "findings", "history", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("tenant", "domain", "shown_name", "method", "status", "failure_reason")}),
        ("What to publish", {"fields": ("instructions",)}),
        ("Checks", {"fields": ("checks", "consecutive_misses", "last_checked_at", "next_check_at", "verified_at",
                               "findings")}),
        ("History", {"fields": ("history", "created_at", "updated_at")}),
    )

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view  # login, staff, CSRF
        return [path("<int:pk>/verify/", view(self.verify_view), name="domains_tenantdomain_verify"),
                *super().get_urls()]

    def verify_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The change page's "Verify now" button: the action's work for one domain, back to its page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        row = get_object_or_404(TenantDomain, pk=pk)
        if not self.has_change_permission(request, row):
            raise PermissionDenied("verifying a domain needs the change permission on domains")
        done = services.verify_now(row.pk)
        said = {"running": "a check is already under way; reload the page in a moment.",
                "recorded": "recorded; the next sweep will queue it."}
        self.message_user(request, f"Check requested for {row.domain}: "
                                   + said.get(done, "a worker will check it as soon as one is free."),
                          messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:domains_tenantdomain_change", args=[row.pk]))

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {**(extra_context or {}), "can_verify": self.has_change_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = AddDomainForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ((None, {"fields": ("tenant", "domain", "method")}),)
        return self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: TenantDomain, form: Any, change: bool) -> None:
        if change:
            return  # nothing on the change page is editable
        created = services.add_domain(tenant_id=obj.tenant_id, domain=obj.domain, method=obj.method)
        obj.pk, obj.token, obj.created_at = created.pk, created.token, created.created_at

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        results, distinct = super().get_search_results(request, queryset, search_term)
        try:  # "Bücher" finds xn--bcher-kva.example
            name = idna.encode(search_term.strip().rstrip("."), uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return results, distinct
        if not name or name == search_term:
            return results, distinct
        return results | queryset.filter(domain__icontains=name), distinct

    @admin.display(description="reads as")
    def shown_name(self, obj: TenantDomain) -> str:
        shown = services.display_name(obj.domain)
        return shown if shown != obj.domain else ""

    @admin.display(description="instructions")
    def instructions(self, obj: TenantDomain) -> str:
        record = services.expected_record(obj)
        return format_html("<p>{}</p><table><tr><th>type</th><td>{}</td></tr><tr><th>name</th><td><code>{}</code>"
                           "</td></tr><tr><th>value</th><td><code>{}</code></td></tr></table>",
                           record["instructions"], record["type"], record["name"], record["value"])

    @admin.display(description="last check found")
    def findings(self, obj: TenantDomain) -> str:
        if not obj.last_check:
            return "not checked yet"
        lookups = json.dumps(obj.last_check.get("lookups", []), indent=2, ensure_ascii=False)
        return format_html("<p>{}</p><pre>{}</pre>", obj.last_check.get("summary", ""), lookups)

    @admin.display(description="status changes")
    def history(self, obj: TenantDomain) -> str:
        events = obj.events.all()[:50]
        if not events:
            return "none"
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((e.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"), e.from_status or "—", e.to_status, e.reason,
              e.actor or "worker") for e in events),
        )
        return format_html("<table><tr><th>when</th><th>from</th><th>to</th><th>why</th><th>by</th></tr>{}</table>",
                           rows)

    @admin.action(description="Verify now (ahead of the queue)", permissions=["change"])
    def verify_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = {pk: services.verify_now(pk) for pk in queryset.values_list("pk", flat=True)}
        self.message_user(request, f"Check requested for {len(done)} domain(s).", messages.SUCCESS)

    @admin.action(description="Regenerate token (back to pending)", permissions=["change"])
    def regenerate_token(self, request: HttpRequest, queryset: QuerySet) -> None:
        for pk in queryset.values_list("pk", flat=True):
            services.regenerate_token(pk, actor=request.user.get_username())
        self.message_user(request, f"New token for {queryset.count()} domain(s); they are pending again. "
                                   "Give the tenant the new record to publish.", messages.SUCCESS)

    @admin.action(description="Mark failed", permissions=["change"])
    def mark_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = sum(services.mark_failed(pk, actor=request.user.get_username())
                      for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{changed} domain(s) marked failed.", messages.SUCCESS)
