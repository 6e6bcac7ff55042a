"""Staff review of machine translations: the main screen of the app.

The list filters on status, review flag, score, content type, locales, tenant and flag kind and
searches source and translation; bulk approve/publish/reject move what can move and name the
rows that could not. The change page shows source and translation side by side (escaped, HTML
as code) with the flags, the history and one POST form per allowed action. Every action goes
through ``translations.services`` (which checks the permission again), never a model save.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.text import Truncator

from broxiva.admin import ReadOnly
from translations import services
from translations.errors import InvalidTransition
from translations.models import Translation, TranslationBatch
from translations.services.lifecycle import APPROVE_PERM, PUBLISH_PERM


class FlagFilter(admin.SimpleListFilter):
    title = "quality flag"
    parameter_name = "flag"
    KINDS = {
        "formatting": ("formatting", "HTML", "placeholders"),
        "identical": ("identical to the source",),
        "length": ("much shorter", "much longer"),
        "script": ("script, expected",),
        "empty": ("is empty",),
        "judge": ("quality judge",),
        "pseudo": ("pseudo-locale",),
        "unsafe": ("was removed", "were removed"),
    }
    LABELS = {
        "formatting": "tags or placeholders differ",
        "identical": "identical to source",
        "length": "length out of bounds",
        "script": "wrong script",
        "empty": "empty",
        "judge": "low judge score",
        "pseudo": "pseudo-locale (no provider)",
        "unsafe": "unsafe HTML removed",
        "any": "any flag",
        "none": "no flag",
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(self.LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if value == "any":
            return queryset.exclude(quality_flags=[])
        if value == "none":
            return queryset.filter(quality_flags=[])
        words = self.KINDS.get(value)
        if not words:
            return queryset
        flags = queryset.annotate(_flags=Cast("quality_flags", TextField()))
        query = None
        for word in words:
            part = flags.filter(_flags__icontains=word)
            query = part if query is None else query | part
        return query


class ScoreFilter(admin.SimpleListFilter):
    title = "quality score"
    parameter_name = "score"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("low", "below 70"), ("high", "70 and above"), ("none", "not scored")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return {
            "low": lambda q: q.filter(quality_score__lt=70),
            "high": lambda q: q.filter(quality_score__gte=70),
            "none": lambda q: q.filter(quality_score__isnull=True),
        }.get(self.value() or "", lambda q: q)(queryset)


def _label(row: Translation) -> str:
    return f"#{row.pk} {row.content_type} {row.entity_id}.{row.field_name} {row.source_locale}→{row.target_locale}"


@admin.register(Translation)
class TranslationAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "id",
        "short_source",
        "short_translation",
        "status",
        "needs_review",
        "quality_score",
        "source_locale",
        "target_locale",
        "content_type",
        "tenant",
        "updated_at",
    )
    list_display_links = ("id", "short_source")
    list_filter = (
        "status",
        "needs_review",
        ScoreFilter,
        FlagFilter,
        "content_type",
        "source_locale",
        "target_locale",
        "tenant",
        "provider",
    )
    search_fields = ("source_text", "translated_text", "published_text", "entity_id", "field_name")
    list_select_related = ("tenant",)
    list_per_page = 100
    actions = ["approve_selected", "publish_selected", "reject_selected"]
    change_form_template = "admin/translations/translation/change_form.html"
    fields = readonly_fields = (
        "tenant",
        "content_type",
        "entity_id",
        "field_name",
        "source_hash",
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "job_id",
        "batch",
        "reviewed_by",
        "reviewed_at",
        "published_by",
        "published_at",
        "translated_at",
        "created_at",
        "updated_at",
    )

    @admin.display(description="source")
    def short_source(self, obj: Translation) -> str:
        return Truncator(obj.source_text).chars(60)

    @admin.display(description="translation")
    def short_translation(self, obj: Translation) -> str:
        return Truncator(obj.translated_text).chars(60)

    # Read-only: rows come from request_translation and jobs; reviewers change them through the actions.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return super().has_view_permission(request, obj) or user.has_perm(APPROVE_PERM) or user.has_perm(PUBLISH_PERM)

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(APPROVE_PERM)

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PUBLISH_PERM)

    # --- Bulk actions ----------------------------------------------------------------------------

    def _bulk(self, request: HttpRequest, queryset: QuerySet, verb: str, done: str, move: Any) -> None:
        moved, refused = 0, []
        for row in queryset.order_by("pk"):
            try:
                move(row)
                moved += 1
            except (InvalidTransition, PermissionDenied, ValueError) as exc:
                refused.append(f"{_label(row)} ({exc})")
        if moved:
            self.message_user(request, f"{moved} translation(s) {done}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Could not {verb} {len(refused)}: " + "; ".join(refused), messages.WARNING)

    @admin.action(description="Approve selected translations", permissions=["approve"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, "approve", "approved", lambda row: services.approve(row.pk, user=request.user))

    @admin.action(description="Publish selected translations", permissions=["publish"])
    def publish_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, "publish", "published", lambda row: services.publish(row.pk, user=request.user))

    @admin.action(description="Reject selected translations", permissions=["approve"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(
            request,
            queryset,
            "reject",
            "rejected",
            lambda row: services.reject(row.pk, user=request.user, reason="rejected from the list"),
        )

    # --- The change page's buttons -----------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view  # login, staff, CSRF
        return [
            path("<int:pk>/do/<str:action>/", view(self.action_view), name="translations_translation_do"),
            *super().get_urls(),
        ]

    def action_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        row = get_object_or_404(Translation, pk=pk)
        back = reverse("admin:translations_translation_change", args=[row.pk])
        user = request.user
        calls = {
            "approve": lambda: services.approve(row.pk, user=user),
            "publish": lambda: services.publish(row.pk, user=user),
            "reject": lambda: services.reject(row.pk, user=user, reason=request.POST.get("reason", "")),
            "retranslate": lambda: services.retranslate(row.pk, user=user),
            "edit": lambda: services.edit(row.pk, user=user, text=request.POST.get("text", "")),
        }
        if action not in calls:
            return HttpResponseNotAllowed(["POST"])
        try:
            moved = calls[action]()
        except PermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        except (InvalidTransition, ValueError) as exc:
            self.message_user(request, f"{action} refused: {exc}", messages.ERROR)
            return HttpResponseRedirect(back)
        self.message_user(request, f"{action}: the translation is now {moved.get_status_display()}.", messages.SUCCESS)
        return HttpResponseRedirect(back)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        row = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if row is not None:
            user = request.user
            allowed = services.allowed_actions(row)
            can = {"approve": user.has_perm(APPROVE_PERM), "publish": user.has_perm(PUBLISH_PERM)}
            context.update(
                translation=row,
                events=row.events.select_related("user").order_by("-created_at", "-id")[:50],
                buttons=[
                    a
                    for a in ("approve", "publish", "reject", "retranslate")
                    if a in allowed and can["publish" if a == "publish" else "approve"]
                ],
                can_edit="edit" in allowed and can["approve"],
            )
        return super().change_view(request, object_id, form_url, extra_context=context)


@admin.register(TranslationBatch)
class TranslationBatchAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "id",
        "tenant",
        "provider",
        "external_id",
        "status",
        "succeeded",
        "failed",
        "created_at",
        "ended_at",
    )
    list_filter = ("status", "provider", "tenant")
    readonly_fields = (
        "tenant",
        "provider",
        "model",
        "external_id",
        "input_file_id",
        "status",
        "succeeded",
        "failed",
        "last_error",
        "created_at",
        "ended_at",
    )
    exclude = ("requests",)
    deletable = True  # staff with the delete permission may clear them
