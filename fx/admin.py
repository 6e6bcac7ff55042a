"""Read-only admin of the rate snapshots, with the latest rate per pair and held-rate confirmation."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from broxiva.admin import ReadOnly
from fx.models import ExchangeRate
from fx.selectors import latest_published_rows


class LatestPerPairFilter(admin.SimpleListFilter):
    title = "latest per pair"
    parameter_name = "latest"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("published", "latest published rate of each pair")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() != "published":
            return queryset
        return queryset.filter(id__in=latest_published_rows().values("id"))


@admin.register(ExchangeRate)
class ExchangeRateAdmin(ReadOnly, admin.ModelAdmin):  # snapshots are history: nobody writes them by hand
    list_display = ("base_currency", "quote_currency", "rate", "provider", "as_of", "fetched_at", "status")
    list_filter = (LatestPerPairFilter, "status", "provider", "base_currency", "quote_currency", "as_of")
    search_fields = ("=base_currency", "=quote_currency")
    date_hierarchy = "as_of"
    ordering = ("-as_of", "base_currency", "quote_currency")
    list_per_page = 200
    actions = ["confirm_held"]

    def has_confirm_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("fx.change_exchangerate")

    @admin.action(description="Confirm held rates (publish them)", permissions=["confirm"])
    def confirm_held(self, request: HttpRequest, queryset: QuerySet) -> None:
        from fx.services import rates_confirm

        ids = list(queryset.filter(status=ExchangeRate.Status.HELD).values_list("id", flat=True))
        count = rates_confirm(ids=ids)
        level = messages.SUCCESS if count else messages.WARNING
        self.message_user(request, f"{count} held rate(s) confirmed and published.", level)
