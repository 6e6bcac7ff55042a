"""Translations of shop content, one row per (tenant, content, field, target locale), and their history.

The row is the source of truth a reviewer reads in the admin; every lifecycle move is one
conditional UPDATE in ``translations.services.lifecycle`` plus a ``TranslationEvent`` saying who
and when. ``published_text`` is what the storefront shows: a new draft never clears it.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models


def source_hash(text: str) -> str:
    """Return the translation-memory key of a source text (sha256 of its exact UTF-8 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ContentType(models.TextChoices):
    PRODUCT_TITLE = "product_title", "Product title"
    PRODUCT_DESCRIPTION = "product_description", "Product description"
    CATEGORY_NAME = "category_name", "Category name"
    PAGE_TITLE = "page_title", "Page title"
    PAGE_BODY = "page_body", "Page body"
    SEO_TITLE = "seo_title", "SEO title"
    SEO_DESCRIPTION = "seo_description", "SEO description"


class Translation(models.Model):
    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        AUTO_TRANSLATED = "AUTO_TRANSLATED", "Auto-translated"
        VENDOR_APPROVED = "VENDOR_APPROVED", "Vendor-approved"
        PUBLISHED = "PUBLISHED", "Published"
        REJECTED = "REJECTED", "Rejected"

    ContentType = ContentType

    tenant = models.ForeignKey("broxiva.Tenant", on_delete=models.CASCADE, related_name="translations")
    content_type = models.CharField(max_length=32, choices=ContentType.choices)
    entity_id = models.CharField(max_length=255)
    field_name = models.CharField(max_length=100)
    source_locale = models.CharField(max_length=35)
    target_locale = models.CharField(max_length=35)
    source_text = models.TextField()
    source_hash = models.CharField(max_length=64, db_index=True)
    translated_text = models.TextField(blank=True)
    published_text = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    needs_review = models.BooleanField(default=False, db_index=True)
    quality_score = models.PositiveSmallIntegerField(null=True, blank=True)
    quality_flags = models.JSONField(default=list, blank=True)
    # True when the formatting check failed (tags/placeholders): approving needs an edit first.
    format_mismatch = models.BooleanField(default=False)
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    job_id = models.CharField(max_length=128, blank=True)
    batch = models.ForeignKey(
        "TranslationBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="translations"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    translated_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "translations"
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "content_type", "entity_id", "field_name", "target_locale"],
                name="translations_one_row_per_field_and_locale",
            ),
            models.CheckConstraint(
                condition=models.Q(quality_score__isnull=True) | models.Q(quality_score__lte=100),
                name="translations_quality_score_0_100",
            ),
        ]
        indexes = [
            # Translation memory: identical source for the same pair and content type.
            models.Index(
                fields=["source_hash", "source_locale", "target_locale", "content_type"], name="translations_memory"
            ),
            models.Index(fields=["tenant", "entity_id", "target_locale"], name="translations_entity"),
        ]
        permissions = [
            ("approve_translation", "Can approve, reject, edit and re-translate translations"),
            ("publish_translation", "Can publish approved translations"),
        ]

    def __str__(self) -> str:
        return f"{self.content_type} {self.entity_id}.{self.field_name} {self.source_locale}→{self.target_locale}"


class TranslationEvent(models.Model):
    """One lifecycle move of a translation: who, when, from what to what."""

    translation = models.ForeignKey(Translation, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=32)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "translation_events"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        who = self.user or "system"
        return f"{self.action}: {self.from_status or '-'} → {self.to_status} by {who}"


class TranslationBatch(models.Model):
    """One submission to a provider's batch API (Anthropic Message Batches, OpenAI Batch API)."""

    class Status(models.TextChoices):
        SUBMITTED = "SUBMITTED", "Submitted"
        ENDED = "ENDED", "Ended"
        FAILED = "FAILED", "Failed"

    tenant = models.ForeignKey("broxiva.Tenant", on_delete=models.CASCADE, related_name="translation_batches")
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=100, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    input_file_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SUBMITTED, db_index=True)
    # custom_id → {"ids": [translation ids], "hashes": [their source hashes], "tokens": {...}}
    requests = models.JSONField(default=dict)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "translation_batches"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.provider} batch {self.external_id or self.pk}"
