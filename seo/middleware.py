"""Let tenant storefront hosts reach the per-host sitemap views, and no other view.

Tenant hosts are dynamic (``{slug}.broxiva.com``, verified custom domains), so they cannot be
listed in ``ALLOWED_HOSTS``, and a wildcard there would open every view (the admin included) to
any ``Host``. This middleware runs first: for the four per-host paths only (``/sitemap.xml``,
``/sitemap-<n>.xml``, ``/sitemaps/<generation>/<file>``, ``/robots.txt``, ``/<key>.txt``) it
resolves the ``Host`` to an active tenant (``seo.hosts.tenant_for_host``) and, when it is one,
vouches for it by pinning ``request.get_host()`` to it (Django's ``ALLOWED_HOSTS`` check lives
there). An unknown host on those paths gets 404; every other path is left to Django's usual
``ALLOWED_HOSTS`` check, unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.http.request import split_domain_port

PER_HOST_PATH = re.compile(
    r"^/(?:sitemap(?:-[1-9][0-9]*)?\.xml|sitemaps/[0-9]+/[A-Za-z0-9_.-]+|robots\.txt|[A-Za-z0-9-]{8,128}\.txt)$"
)


class TenantHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.seo_tenant = None  # type: ignore[attr-defined]
        if not PER_HOST_PATH.match(request.path_info):
            return self.get_response(request)
        from seo.hosts import tenant_for_host

        raw = request._get_raw_host()
        domain, _port = split_domain_port(raw)
        tenant = tenant_for_host(domain) if domain else None
        if tenant is None:
            return HttpResponseNotFound("Unknown host", content_type="text/plain")
        request.seo_tenant = tenant  # type: ignore[attr-defined]
        request.get_host = lambda: raw  # type: ignore[method-assign]  # vouched for: a tenant's host
        return self.get_response(request)
