"""Product sync models: where a catalogue comes from, what we hold of it, and each sync's record.

``Product.synced`` holds each tracked field's value as last synced (canonical strings, see
``products.fields``); a field whose current value differs from it was edited locally, and
``Product.local_edited_at`` says when (``newest_wins`` compares it with the source's
``updated_at``). ``Product.save()`` keeps those stamps, so an edit through the admin or the ORM
is seen by the next sync; the engine writes in bulk and sets both columns itself.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from broxiva.models import Tenant
from products import fields as tracked


class SourceName(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    BIGCOMMERCE = "bigcommerce", "BigCommerce"
    CUSTOM = "custom", "Custom feed"


class ConflictResolution(models.TextChoices):
    SOURCE_WINS = "source_wins", "Source wins"
    LOCAL_WINS = "local_wins", "Local wins"
    NEWEST_WINS = "newest_wins", "Newest wins"
    FLAG_FOR_REVIEW = "flag_for_review", "Flag for review"


class SyncMode(models.TextChoices):
    FULL = "full", "Full"
    DELTA = "delta", "Delta"
    INVENTORY_ONLY = "inventory_only", "Inventory only"


class SourceConnection(models.Model):
    """A tenant's shop at one source. ``credentials`` and ``webhook_secret`` are secrets.

    ``credentials`` uses each source's own names: ``access_token`` (Shopify); ``consumer_key``
    and ``consumer_secret`` (WooCommerce); ``access_token`` and ``store_hash`` (BigCommerce);
    optionally ``token`` (a custom feed's bearer token). Never rendered in the admin, logged,
    put in job arguments or in an error text (``products.secrets.mask``).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="source_connections")
    name = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=16, choices=SourceName.choices)
    base_url = models.URLField(max_length=500, help_text="The shop's base URL (a custom feed: the feed's URL)")
    credentials = models.JSONField(default=dict, blank=True)
    webhook_secret = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3, blank=True, help_text="The shop's currency when products carry none")
    conflict_resolution = models.CharField(
        max_length=16, choices=ConflictResolution.choices, default=ConflictResolution.SOURCE_WINS
    )
    is_active = models.BooleanField(default=True)
    last_synced_at = models.DateTimeField(null=True, blank=True, help_text="When the last successful sync ended")
    sync_cursor = models.DateTimeField(
        null=True, blank=True, help_text="Start of the last successful full/delta sync: the next delta reads from here"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "id"]

    def __str__(self) -> str:
        return f"{self.name or self.get_source_display()} #{self.pk}"

    def __repr__(self) -> str:  # never the credentials
        return f"<SourceConnection {self.pk} {self.source}>"


class Category(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="product_categories")
    # No index of its own: the unique (connection, external_id) index serves it (see Product).
    connection = models.ForeignKey(
        SourceConnection, on_delete=models.CASCADE, related_name="categories", db_index=False
    )
    external_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="category_unique_per_connection")
        ]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DRAFT = "draft", "Draft"
        ARCHIVED = "archived", "Archived"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="products")
    # No index of its own: the unique (connection, external_id) index serves every query by
    # connection, and a second one lets a planner without fresh statistics (a bulk load before
    # autovacuum's ANALYZE) filter a page's 100 products out of the whole catalogue (bench_products.py).
    connection = models.ForeignKey(SourceConnection, on_delete=models.CASCADE, related_name="products", db_index=False)
    external_id = models.CharField(max_length=255)
    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True, help_text="HTML")
    handle = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    inventory_quantity = models.IntegerField(null=True, blank=True)
    categories = models.ManyToManyField(Category, blank=True, related_name="products")
    source_updated_at = models.DateTimeField(null=True, blank=True)
    synced = models.JSONField(default=dict, blank=True, help_text="Each field's value as last synced")
    local_edited_at = models.JSONField(default=dict, blank=True, help_text="Field → when it was edited here")
    # Rewritten on every product by each full sync: unindexed, so those UPDATEs stay HOT.
    last_seen_run = models.ForeignKey(
        "SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connection", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="product_unique_per_connection")
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="product_tenant_status")]

    def __str__(self) -> str:
        return self.title or self.external_id

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, stamping ``local_edited_at`` for each tracked field edited here (and clearing it
        for a field back at its synced value), so ``newest_wins`` knows when the edit happened."""
        if self.pk is not None and self.synced:
            loaded = getattr(self, "_loaded", {})
            stamps = dict(self.local_edited_at or {})
            now = timezone.now().isoformat()
            for name in tracked.FIELDS:
                if name not in self.synced:
                    continue
                value = tracked.canon(name, getattr(self, name))
                if value == self.synced[name]:
                    stamps.pop(name, None)
                elif name not in stamps or value != loaded.get(name, value):
                    stamps[name] = now
            self.local_edited_at = stamps
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "local_edited_at"}
        super().save(*args, **kwargs)
        self._loaded = {f: tracked.canon(f, getattr(self, f)) for f in tracked.FIELDS}

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any) -> Product:
        instance = super().from_db(db, field_names, values)
        instance._loaded = {f: tracked.canon(f, getattr(instance, f)) for f in tracked.FIELDS if f in field_names}
        return instance


class Variant(models.Model):
    """A product's variant as the source has it (the source always wins for variants)."""

    # Served by the unique (product, external_id) index.
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants", db_index=False)
    external_id = models.CharField(max_length=255)
    sku = models.CharField(max_length=255, blank=True, db_index=True)
    title = models.CharField(max_length=500, blank=True)
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    inventory_quantity = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["product", "id"]
        constraints = [models.UniqueConstraint(fields=["product", "external_id"], name="variant_unique_per_product")]

    def __str__(self) -> str:
        return self.sku or self.external_id


class SyncRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual"
        SCHEDULE = "schedule", "Schedule"
        WEBHOOK = "webhook", "Webhook"

    connection = models.ForeignKey(SourceConnection, on_delete=models.CASCADE, related_name="runs")
    mode = models.CharField(max_length=16, choices=SyncMode.choices, default=SyncMode.DELTA)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    conflict_resolution = models.CharField(max_length=16, choices=ConflictResolution.choices, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    since = models.DateTimeField(null=True, blank=True, help_text="A delta reads products changed after this")
    cursor = models.TextField(blank=True, help_text="The source's cursor after the last stored page")
    pages = models.PositiveIntegerField(default=0)
    jobs = models.PositiveIntegerField(default=0, help_text="Job executions that worked on this run")
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    archived = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=list, blank=True, help_text="[{external_id, reason}] (the first 1,000)")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["connection", "-created_at"], name="syncrun_connection_recent")]

    def __str__(self) -> str:
        return f"run {self.pk} {self.mode} {self.status}"

    @property
    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("created", "updated", "unchanged", "archived", "conflicts", "errors")}


class SyncConflict(models.Model):
    """A field changed both here and at the source under ``flag_for_review`` (or recorded for the
    other strategies, already resolved). While open, the local value stays."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    class Resolution(models.TextChoices):
        KEEP_LOCAL = "keep_local", "Keep local"
        TAKE_SOURCE = "take_source", "Take source"
        SOURCE_WINS = "source_wins", "Source won"
        LOCAL_WINS = "local_wins", "Local won"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="conflicts")
    run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="conflict_rows")
    field = models.CharField(max_length=32)
    # None (no price, no quantity) is not "" (an empty title): both can be a side of a conflict.
    local_value = models.TextField(null=True, blank=True)  # noqa: DJ001
    source_value = models.TextField(null=True, blank=True)  # noqa: DJ001
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "field"], condition=models.Q(status="open"), name="one_open_conflict_per_field"
            )
        ]

    def __str__(self) -> str:
        return f"{self.product_id}.{self.field} ({self.status})"
