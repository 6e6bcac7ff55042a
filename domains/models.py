"""Tenants' custom domains and the proof that they own them (``tenant_domains``)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class TenantDomain(models.Model):
    """A custom domain a tenant wants its storefront on, pending until proved, then verified.

    ``domain`` is stored normalised (``domains.normalize``): lower-case, no trailing dot, IDN in
    its ``xn--`` form. ``token`` is the secret the tenant publishes; it is never logged.
    ``last_check`` says what the last check looked up and what it found.
    """

    class Method(models.TextChoices):
        DNS_TXT = "dns_txt", "DNS TXT record"
        DNS_CNAME = "dns_cname", "DNS CNAME record"
        HTTP_FILE = "http_file", "File over HTTP"
        META_TAG = "meta_tag", "HTML meta tag"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        VERIFIED = "verified", "Verified"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey("broxiva.Tenant", on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True)
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.DNS_TXT)
    token = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    checks = models.PositiveIntegerField(default=0, help_text="Checks that found no proof")
    consecutive_misses = models.PositiveIntegerField(
        default=0, help_text="Re-checks of a verified domain in a row that found no proof")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(default=timezone.now, db_index=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    last_check = models.JSONField(default=dict, blank=True)
    # Set by "verify now": the next job checks the domain whatever its status or schedule.
    verify_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "tenant_domains"
        ordering = ["domain"]
        indexes = [models.Index(fields=["status", "next_check_at"], name="tenant_domain_due")]

    def __str__(self) -> str:
        return self.domain


class TenantDomainEvent(models.Model):
    """One change of a domain's status (or token), for the admin's history: who, when, why."""

    domain = models.ForeignKey(TenantDomain, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, choices=TenantDomain.Status.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=TenantDomain.Status.choices)
    reason = models.CharField(max_length=255, blank=True)
    actor = models.CharField(max_length=150, blank=True, help_text="Staff user, or empty for the worker")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "tenant_domain_events"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.domain_id}: {self.from_status or '-'} → {self.to_status}"
