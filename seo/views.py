"""Per-tenant-host views: the sitemap index and files, robots.txt and the IndexNow key file.

``request.seo_tenant`` is set by ``seo.middleware.TenantHostMiddleware`` from the ``Host``.
Files are streamed from the ``sitemaps`` storage, or redirected to ``SITEMAP_STORAGE_URL`` when
the storage is public (the index itself is always served here: a sitemap index must live on
the host whose URLs it lists).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_safe

from seo.services import current_generation, sitemaps_storage


def _tenant(request: HttpRequest):
    tenant = getattr(request, "seo_tenant", None)
    if tenant is None:
        raise Http404("Unknown host")
    return tenant


def _stream(path: str, content_type: str) -> HttpResponse:
    storage = sitemaps_storage()
    try:
        handle = storage.open(path, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("Sitemap file not found") from None
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "public, max-age=3600"
    return response


@require_safe
def sitemap_index(request: HttpRequest, part: str = "1") -> HttpResponse:
    number = int(part)
    generation = current_generation(_tenant(request).pk)
    if generation is None or not 1 <= number <= len(generation.index_files):
        raise Http404("No sitemap yet")
    return _stream(generation.index_files[number - 1], "application/xml; charset=utf-8")


@require_safe
def sitemap_file(request: HttpRequest, generation_id: str, name: str) -> HttpResponse:
    generation = current_generation(_tenant(request).pk)
    found = generation and next(
        (f for f in generation.files if f["generation"] == int(generation_id) and f["name"] == name and f["path"]), None
    )
    if not found:
        raise Http404("Not a file of this host's current sitemap")
    if settings.SITEMAP_STORAGE_URL:
        return HttpResponseRedirect(f"{settings.SITEMAP_STORAGE_URL.rstrip('/')}/{found['path']}")
    return _stream(found["path"], "application/gzip")


@require_safe
def robots_txt(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    generation = current_generation(tenant.pk)
    lines = ["User-agent: *", "Allow: /", ""]
    if generation is not None:
        for part, _ in enumerate(generation.index_files, start=1):
            name = "sitemap.xml" if part == 1 else f"sitemap-{part}.xml"
            lines.append(f"Sitemap: https://{generation.host}/{name}")
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@require_safe
def indexnow_key(request: HttpRequest, key: str) -> HttpResponse:
    _tenant(request)
    expected = settings.INDEXNOW_KEY
    if not expected or not hmac.compare_digest(key.encode(), expected.encode()):
        raise Http404("Not found")
    return HttpResponse(expected, content_type="text/plain; charset=utf-8")
