"""Streaming sitemap writers: ``lxml.etree.xmlfile`` into ``gzip.GzipFile`` over a local file.

Nothing is held per URL: each ``<url>`` is written as it comes, and a file is closed and handed
to ``on_file`` (which uploads it) as soon as it is full, so memory and local disk stay flat
whatever the catalogue's size. A file holds at most ``max_urls`` URLs and stays under
``max_bytes`` uncompressed: before each ``<url>`` the writer checks that a bound on its size
still fits, flushing lxml's buffer to count exactly when it gets close.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
XHTML_NS = "http://www.w3.org/1999/xhtml"
URLSET = f"{{{SITEMAP_NS}}}urlset"
SITEMAPINDEX = f"{{{SITEMAP_NS}}}sitemapindex"
URL = f"{{{SITEMAP_NS}}}url"
SITEMAP = f"{{{SITEMAP_NS}}}sitemap"
LOC = f"{{{SITEMAP_NS}}}loc"
LASTMOD = f"{{{SITEMAP_NS}}}lastmod"
LINK = f"{{{XHTML_NS}}}link"
MAX_INDEX_ENTRIES = 50_000  # the protocol's limit per sitemap index
MAX_URL_LENGTH = 2048  # the protocol's limit for <loc>
# Bytes lxml may hold in its buffer plus the closing tag: counted as written before a flush.
_SLACK = 16 * 1024
GZIP_LEVEL = 6  # gzip's default 9 costs twice the time for a few per cent


def w3c(value: dt.datetime) -> str:
    """W3C Datetime (the protocol's lastmod format), in UTC, to the second."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def hreflang(locale: str) -> str:
    return locale.replace("_", "-")


class _Counter:
    """Counts the uncompressed bytes on their way into the gzip stream."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return self.raw.write(data)


@dataclass
class WrittenFile:
    name: str
    local_path: str
    type: str
    locale: str
    urls: int = 0
    bytes: int = 0
    compressed_bytes: int = 0


class _Open:
    """One sitemap file being written: its gzip stream, xmlfile and the open ``<urlset>``."""

    def __init__(self, written: WrittenFile, root: str, nsmap: dict[str | None, str], compress: bool) -> None:
        self.written = written
        self.stack = ExitStack()
        raw = self.stack.enter_context(open(written.local_path, "wb"))  # noqa: SIM115 - closed by the stack
        if compress:
            raw = self.stack.enter_context(gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0))
        self.counter = _Counter(raw)
        self.xf = self.stack.enter_context(etree.xmlfile(self.counter, encoding="utf-8"))
        self.xf.write_declaration()
        self.stack.enter_context(self.xf.element(root, nsmap=nsmap))

    def close(self) -> WrittenFile:
        self.stack.close()
        self.written.bytes = self.counter.count
        self.written.compressed_bytes = os.path.getsize(self.written.local_path)
        return self.written


@dataclass
class UrlSetWriter:
    """The sitemap files of one type and locale: ``<type>-<locale>-<n>.xml.gz``, rolled over when full."""

    type: str
    locale: str
    directory: str
    max_urls: int
    max_bytes: int
    on_file: Callable[[WrittenFile], None]
    files: int = 0
    _open: _Open | None = field(default=None, repr=False)

    def add(self, loc: str, lastmod: dt.datetime | None, alternates: Iterable[tuple[str, str]]) -> None:
        """Write one ``<url>`` with its ``xhtml:link`` alternates ((hreflang, href) pairs)."""
        alternates = list(alternates)
        # Escaping at most multiplies a URL by 5 ("&" → "&amp;"); 80 bytes of markup per element.
        bound = 5 * (len(loc) + sum(len(href) + len(lang) for lang, href in alternates)) + 80 * (len(alternates) + 3)
        current = self._open
        if current is not None and (
            current.written.urls >= self.max_urls or not self._fits(current, bound)
        ):
            self._close()
            current = None
        if current is None:
            current = self._start()
        xf = current.xf
        with xf.element(URL):
            with xf.element(LOC):
                xf.write(loc)
            if lastmod is not None:
                with xf.element(LASTMOD):
                    xf.write(w3c(lastmod))
            for lang, href in alternates:
                with xf.element(LINK, rel="alternate", hreflang=lang, href=href):
                    pass
        current.written.urls += 1

    def _fits(self, current: _Open, bound: int) -> bool:
        if current.counter.count + bound + _SLACK < self.max_bytes:
            return True
        current.xf.flush()  # count what lxml still buffers, then decide exactly
        return current.counter.count + bound + len("</urlset>") < self.max_bytes

    def _start(self) -> _Open:
        self.files += 1
        name = f"{self.type}-{self.locale}-{self.files}.xml.gz"
        written = WrittenFile(name, os.path.join(self.directory, name), self.type, self.locale)
        self._open = _Open(written, URLSET, {None: SITEMAP_NS, "xhtml": XHTML_NS}, compress=True)
        return self._open

    def _close(self) -> None:
        if self._open is not None:
            written = self._open.close()
            self._open = None
            self.on_file(written)

    def close(self) -> None:
        self._close()


def write_index(
    entries: Iterable[tuple[str, str | None]], directory: str, *, max_entries: int = MAX_INDEX_ENTRIES
) -> list[WrittenFile]:
    """Write the sitemap index (``sitemap.xml``, then ``sitemap-2.xml``… past ``max_entries``); none for no entries."""
    written: list[WrittenFile] = []
    current: _Open | None = None
    for loc, lastmod in entries:
        if current is None or current.written.urls >= max_entries:
            if current is not None:
                written.append(current.close())
            name = "sitemap.xml" if not written else f"sitemap-{len(written) + 1}.xml"
            current = _Open(
                WrittenFile(name, os.path.join(directory, name), "index", ""), SITEMAPINDEX,
                {None: SITEMAP_NS}, compress=False,
            )
        with current.xf.element(SITEMAP):
            with current.xf.element(LOC):
                current.xf.write(loc)
            if lastmod is not None:
                with current.xf.element(LASTMOD):
                    current.xf.write(lastmod)
        current.written.urls += 1
    if current is not None:  # no files at all, no index: the XSD wants at least one <sitemap>
        written.append(current.close())
    return written
