"""``generate_sitemaps``: stream a tenant's catalogue into sitemap files, store them, publish the index.

Order of work (docs/sitemaps.md): every sitemap file is written and stored first (each uploaded
as soon as it is full, then its local copy removed), then the index, and only then is the
generation marked ``published`` (the row ``/sitemap.xml`` serves from). A reader therefore never
gets an index pointing at a file that is not stored yet. Older generations' files are removed
after the publication; a failed generation removes what it had stored and leaves the current
sitemap as it was.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone

from broxiva.locks import LockNotAcquired, with_lock
from broxiva.models import Tenant
from seo import hosts
from seo.errors import InvalidRequest
from seo.models import SitemapGeneration
from seo.services import announce
from seo.services.catalogue import READERS, TYPES, Site
from seo.services.writer import (
    MAX_URL_LENGTH,
    UrlSetWriter,
    WrittenFile,
    alternates_markup,
    hreflang,
    w3c,
    write_index,
)

logger = logging.getLogger(__name__)
Status = SitemapGeneration.Status


def sitemaps_storage() -> Any:
    return storages["sitemaps"]


def current_generation(tenant_id: int) -> SitemapGeneration | None:
    """Return the tenant's published generation: the one ``/sitemap.xml`` serves."""
    return SitemapGeneration.objects.filter(tenant_id=tenant_id, published=True).order_by("-id").first()


def _check(tenant_id: int, types: Iterable[str] | None, locales: Iterable[str] | None) -> tuple[Tenant, list, list]:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        raise InvalidRequest(f"tenant {tenant_id} does not exist")
    if isinstance(types, str) or isinstance(locales, str):
        raise InvalidRequest("types and locales are lists")
    chosen_types = list(dict.fromkeys(types)) if types is not None else list(TYPES)
    if unknown := [t for t in chosen_types if t not in TYPES]:
        raise InvalidRequest(f"unknown sitemap type(s) {', '.join(map(str, unknown))}; known: {', '.join(TYPES)}")
    chosen_locales = list(dict.fromkeys(locales)) if locales is not None else list(tenant.locales)
    if unknown := [loc for loc in chosen_locales if loc not in tenant.locales]:
        raise InvalidRequest(
            f"locale(s) {', '.join(map(str, unknown))} are not locales of tenant {tenant.slug} "
            f"({', '.join(tenant.locales)})"
        )
    if not chosen_types or not chosen_locales:
        raise InvalidRequest("give at least one type and one locale, or leave them out for all")
    return tenant, chosen_types, chosen_locales


def generate_sitemaps(
    *,
    tenant_id: int,
    types: list[str] | None = None,
    locales: list[str] | None = None,
    upload_to_storage: bool = True,
    ping_search_engines: bool = False,
    job_id: str = "",
) -> SitemapGeneration:
    """Generate the tenant's sitemaps and return the generation's record (also stored).

    ``types``/``locales`` limit what is regenerated; the index keeps the current files of the
    others. ``upload_to_storage=False`` writes and measures without storing or publishing
    anything. ``ping_search_engines`` announces the URLs changed since the last announcement
    with IndexNow. One generation per tenant at a time: a second one is recorded ``skipped``.
    Raise ``InvalidRequest`` for bad input (nothing stored); any other error is recorded on a
    ``failed`` row and raised again for the queue to retry.
    """
    tenant, types, locales = _check(tenant_id, types, locales)
    try:
        with with_lock("sitemaps:generate", tenant=tenant.pk, ttl_seconds=60, wait_time_ms=0, keep_alive=True):
            return _generate(tenant, types, locales, upload_to_storage, ping_search_engines, job_id)
    except LockNotAcquired:
        logger.info("sitemaps tenant=%s skipped: another generation is running", tenant.pk)
        now = timezone.now()
        return SitemapGeneration.objects.create(
            tenant=tenant, job_id=job_id, status=Status.SKIPPED, types=types, locales=locales,
            upload_to_storage=upload_to_storage, ping_requested=ping_search_engines, started_at=now,
            finished_at=now, duration_ms=0, error="another generation of this tenant was running",
        )


class _Run:
    """One generation's writing: files go to local temporaries, then to storage one by one."""

    def __init__(self, generation: SitemapGeneration, tenant: Tenant, directory: str, upload: bool) -> None:
        self.generation = generation
        self.tenant = tenant
        self.directory = directory
        self.upload = upload
        self.storage = sitemaps_storage() if upload else None
        self.prefix = f"tenant-{tenant.pk}/{generation.pk}"
        self.files: list[dict[str, Any]] = []
        self.stored: list[str] = []
        self.written_at = w3c(timezone.now())

    def store(self, name: str, local_path: str) -> str:
        if self.storage is None:
            return ""
        with open(local_path, "rb") as fh:
            path = self.storage.save(f"{self.prefix}/{name}", File(fh, name=name))
        self.stored.append(path)
        return path

    def on_file(self, written: WrittenFile) -> None:
        path = self.store(written.name, written.local_path)
        os.remove(written.local_path)
        self.files.append({
            "name": written.name, "path": path, "generation": self.generation.pk, "type": written.type,
            "locale": written.locale, "urls": written.urls, "bytes": written.bytes,
            "compressed_bytes": written.compressed_bytes, "lastmod": self.written_at,
        })

    def write(self, types: list[str], locales: list[str], since: str | None, changed: Any) -> tuple[int, int]:
        """Write every file of ``types`` × ``locales``; return (URLs written, URLs changed since ``since``)."""
        site = Site.of(self.tenant, self.generation.host)
        urls = count_changed = skipped = 0
        for kind in types:
            writers = {
                loc: UrlSetWriter(kind, loc, self.directory, settings.SITEMAP_MAX_URLS, settings.SITEMAP_MAX_BYTES,
                                  self.on_file)
                for loc in locales
            }
            for entity in READERS[kind](site):
                if any(len(url) > MAX_URL_LENGTH for url, _ in entity.versions.values()):
                    skipped += 1
                    continue
                alternates = [(hreflang(loc), url) for loc, (url, _) in entity.versions.items()]
                alternates.append(("x-default", entity.x_default))
                links = alternates_markup(alternates)  # once per entity, the same in each locale's file
                for loc, (url, lastmod) in entity.versions.items():
                    writer = writers.get(loc)
                    if writer is None:
                        continue
                    writer.add(url, lastmod, links)
                    urls += 1
                    if changed is not None and (since is None or (lastmod is not None and lastmod >= since)):
                        changed.write(url + "\n")
                        count_changed += 1
            for writer in writers.values():
                writer.close()
        if skipped:
            logger.warning("sitemaps tenant=%s skipped=%d entities with a URL over %d characters",
                           self.tenant.pk, skipped, MAX_URL_LENGTH)
        return urls, count_changed


def _order(files: list[dict[str, Any]], locales: list[str]) -> list[dict[str, Any]]:
    rank = {loc: i for i, loc in enumerate(locales)}

    def key(f: dict[str, Any]) -> tuple[int, int, int]:
        number = int(f["name"].rsplit("-", 1)[1].split(".", 1)[0])
        return TYPES.index(f["type"]), rank.get(f["locale"], len(rank)), number

    return sorted(files, key=key)


def _generate(
    tenant: Tenant, types: list[str], locales: list[str], upload: bool, ping: bool, job_id: str
) -> SitemapGeneration:
    now = timezone.now()
    # We hold the tenant's lock: a row still "running" belongs to a worker that died mid-way.
    SitemapGeneration.objects.filter(tenant=tenant, status=Status.RUNNING).update(
        status=Status.FAILED, finished_at=now, error="abandoned: its worker stopped before it finished"
    )
    generation = SitemapGeneration.objects.create(
        tenant=tenant, job_id=job_id, types=types, locales=locales, upload_to_storage=upload,
        ping_requested=ping, host=hosts.canonical_host(tenant), started_at=now,
    )
    started = time.monotonic()
    announcing = ping and upload
    # lastmod strings are to the second: ">=" the watermark's second may announce a URL changed
    # just before it once more (harmless), never miss one changed just after it.
    watermark = announce.watermark(tenant.pk) if announcing else None
    since = w3c(watermark) if watermark is not None else None
    with tempfile.TemporaryDirectory(prefix="broxiva-sitemaps-") as directory:
        run = _Run(generation, tenant, directory, upload)
        changed_path = os.path.join(directory, "changed.txt")
        try:
            with open(changed_path, "w", encoding="utf-8") as changed:
                urls, count_changed = run.write(types, locales, since, changed if announcing else None)
            files = run.files
            current = current_generation(tenant.pk) if upload else None
            if current is not None and (types != list(TYPES) or locales != list(tenant.locales)):
                redone = {(t, loc) for t in types for loc in locales}
                files += [
                    f for f in current.files
                    if (f["type"], f["locale"]) not in redone and f["type"] in TYPES and f["locale"] in tenant.locales
                ]
            files = _order(files, list(tenant.locales))
            base = f"https://{generation.host}/sitemaps"
            entries = [(f"{base}/{f['generation']}/{f['name']}", f["lastmod"]) for f in files]
            index_paths = []
            # The index last: every file it lists is stored by now.
            for written in write_index(entries, directory,
                                       max_entries=settings.SITEMAP_INDEX_MAX_ENTRIES):
                index_paths.append(run.store(written.name, written.local_path))
        except Exception as exc:
            _fail(generation, run, started, exc)
            raise
        generation.files = files
        generation.index_files = index_paths if upload else []
        generation.url_count = urls
        generation.bytes = sum(f["bytes"] for f in run.files)
        generation.compressed_bytes = sum(f["compressed_bytes"] for f in run.files)
        generation.status = Status.SUCCEEDED
        generation.published = upload
        generation.finished_at = timezone.now()
        generation.duration_ms = int((time.monotonic() - started) * 1000)
        generation.save()
        if upload:
            purge_older(generation)
        if ping and not upload:
            generation.indexnow_status = SitemapGeneration.IndexNow.SKIPPED
            generation.indexnow_error = "nothing was published (upload_to_storage=False)"
            generation.save(update_fields=["indexnow_status", "indexnow_error"])
        if announcing:
            try:
                announce.announce(generation, changed_path=changed_path, changed=count_changed)
            except Exception as exc:  # the sitemap is published: an announcement problem must not undo it
                logger.exception("indexnow tenant=%s generation=%s failed", tenant.pk, generation.pk)
                generation.indexnow_status = SitemapGeneration.IndexNow.PENDING
                generation.indexnow_error = f"{type(exc).__name__}: {exc}"[:2000]
            generation.save()
    logger.info(
        "sitemaps tenant=%s generation=%s files=%d urls=%d bytes=%d ms=%d",
        tenant.pk, generation.pk, len(run.files), generation.url_count, generation.bytes, generation.duration_ms,
    )
    return generation


def _fail(generation: SitemapGeneration, run: _Run, started: float, exc: Exception) -> None:
    logger.warning("sitemaps tenant=%s generation=%s failed: %s", generation.tenant_id, generation.pk, exc)
    _delete(run.storage, run.stored)
    generation.status = Status.FAILED
    generation.error = f"{type(exc).__name__}: {exc}"[:2000]
    generation.finished_at = timezone.now()
    generation.duration_ms = int((time.monotonic() - started) * 1000)
    generation.purged = True
    generation.save()


def _delete(storage: Any, paths: Iterable[str]) -> bool:
    ok = True
    for path in paths:
        try:
            storage.delete(path)
        except Exception:
            ok = False
            logger.warning("sitemaps could not delete %s", path, exc_info=True)
    return ok


def purge_older(generation: SitemapGeneration) -> None:
    """Remove the files of the tenant's earlier generations that ``generation`` no longer lists."""
    keep = {f["path"] for f in generation.files} | set(generation.index_files)
    storage = sitemaps_storage()
    older = SitemapGeneration.objects.filter(
        tenant_id=generation.tenant_id, pk__lt=generation.pk, purged=False
    ).exclude(status=Status.RUNNING)
    with transaction.atomic():
        for old in older.select_for_update():
            paths = [f["path"] for f in old.files if f.get("path") and f["path"] not in keep]
            paths += [p for p in old.index_files if p not in keep]
            deleted = _delete(storage, paths)
            # A file carried over into ``generation`` stays; its generation is looked at again later.
            carried = any(f.get("path") in keep for f in old.files)
            old.published = False
            old.purged = deleted and not carried
            old.save(update_fields=["purged", "published"])
