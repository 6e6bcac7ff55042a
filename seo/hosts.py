"""A tenant's storefront host, and the tenant a request's ``Host`` belongs to.

The canonical host is the tenant's verified custom domain (``domains.TenantDomain``); when it
has several, the one verified first (earliest ``verified_at``, then lowest id), so every
generation picks the same one. Without one it is ``STOREFRONT_HOST_TEMPLATE`` with the slug.
A request is the tenant's on either host: its verified domains and its template host.
"""

from __future__ import annotations

from django.conf import settings

from broxiva.models import Tenant
from domains.models import TenantDomain


def canonical_host(tenant: Tenant) -> str:
    """Return the host the tenant's storefront URLs use (always served over https)."""
    domain = (
        TenantDomain.objects.filter(tenant=tenant, status=TenantDomain.Status.VERIFIED)
        .order_by("verified_at", "id")
        .values_list("domain", flat=True)
        .first()
    )
    return domain or template_host(tenant.slug)


def template_host(slug: str) -> str:
    return settings.STOREFRONT_HOST_TEMPLATE.format(slug=slug).lower()


def _slug_from_template(host: str) -> str | None:
    prefix, marker, suffix = settings.STOREFRONT_HOST_TEMPLATE.lower().partition("{slug}")
    if not marker or len(host) <= len(prefix) + len(suffix):
        return None
    if not (host.startswith(prefix) and host.endswith(suffix)):
        return None
    slug = host[len(prefix) : len(host) - len(suffix)]
    return slug if slug and "." not in slug else None


def tenant_for_host(host: str) -> Tenant | None:
    """Return the active tenant whose storefront ``host`` is (no port, any case), or None."""
    host = host.lower().rstrip(".")
    if not host:
        return None
    tenant = (
        Tenant.objects.filter(
            is_active=True, domains__domain=host, domains__status=TenantDomain.Status.VERIFIED
        ).first()
    )
    if tenant is not None:
        return tenant
    slug = _slug_from_template(host)
    if slug is None:
        return None
    return Tenant.objects.filter(is_active=True, slug=slug).first()
