"""Read-only admin of outbound e-mails: what was sent to whom, when, and why not.

Bodies are not shown: a password-reset or sign-in e-mail carries a secret link, and staff who
can read the log must not be able to use it. The template, sizes and Message-ID identify it.
"""

from __future__ import annotations

from django.contrib import admin

from broxiva.admin import ReadOnly
from notifications.models import OutboundEmail


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("id", "recipients", "subject", "status", "attempts", "sent_at", "tenant", "created_at")
    list_filter = ("status", "template", "tenant", "created_at")
    search_fields = ("=id", "subject", "to", "key", "message_id")
    date_hierarchy = "created_at"
    list_select_related = ("tenant",)
    fields = ("tenant", "key", "to", "from_email", "subject", "template", "body_summary", "message_id", "status",
              "attempts", "last_error", "job_id", "claimed_at", "sent_at", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="to")
    def recipients(self, obj: OutboundEmail) -> str:
        return ", ".join(obj.to)[:120]

    @admin.display(description="body")
    def body_summary(self, obj: OutboundEmail) -> str:
        parts = [f"text {len(obj.text)} characters"]
        if obj.html:
            parts.append(f"HTML {len(obj.html)} characters (multipart/alternative)")
        return "; ".join(parts) + " — not shown: it may carry a secret link"
