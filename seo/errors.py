"""The seo app's one error family: ``transient`` says whether the queue should retry."""

from __future__ import annotations


class SitemapError(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class InvalidRequest(SitemapError):
    """Bad input (an unknown tenant, type or locale): retrying cannot help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)
