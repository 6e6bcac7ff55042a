"""broxiva.http's typed errors, its ``Response`` and ``safe_url`` (what logs and messages show of a URL)."""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict

from broxiva.ratelimit import retry_after_seconds


class HttpError(Exception):
    """An outbound call failed. ``transient``: the same call may succeed later (retry it).

    Messages name the method and host, never the query string or credentials of the URL.
    """

    transient: bool = False

    def __init__(self, message: str, *, url: str = "", transient: bool | None = None) -> None:
        self.url = safe_url(url) if url else ""
        if transient is not None:
            self.transient = transient
        super().__init__(message)


class Timeout(HttpError):
    transient = True


class ConnectionFailed(HttpError):
    transient = True


class TooLarge(HttpError):
    """The response passed ``max_bytes``: asking again brings the same body."""


class TooManyRedirects(HttpError):
    pass


class InvalidUrl(HttpError):
    pass


class BlockedDestination(HttpError):
    """An untrusted URL points at a refused address (or scheme, or carries credentials)."""


def is_transient_status(status: int) -> bool:
    """Return True if asking again later may get another answer: 5xx, 408, 425 and 429."""
    return status >= 500 or status in (408, 425, 429)


class HttpStatusError(HttpError):
    """A non-2xx answer (``Response.raise_for_status``): transient when ``is_transient_status``."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self.status = response.status
        self.retry_after = (retry_after_seconds(response.headers.get("Retry-After"))
                            if response.status in (429, 503) else None)
        host = urlsplit(response.url).hostname or "?"
        super().__init__(f"{response.method} {host}: HTTP {response.status}", url=response.url,
                         transient=is_transient_status(response.status))


@dataclass(frozen=True)
class Response:
    method: str
    url: str  # the final URL, after redirects
    status: int
    headers: CaseInsensitiveDict
    body: bytes
    elapsed: float  # seconds, the whole call

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        charset = "utf-8"
        for param in self.headers.get("Content-Type", "").split(";")[1:]:
            name, _, value = param.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.body.decode(charset, "replace")
        except LookupError:
            return self.body.decode("utf-8", "replace")

    def json(self, **kwargs: Any) -> Any:
        return jsonlib.loads(self.body, **kwargs)

    def raise_for_status(self) -> Response:
        """Return self for a 2xx answer; raise ``HttpStatusError`` otherwise."""
        if not self.ok:
            raise HttpStatusError(self)
        return self


def safe_url(url: str) -> str:
    """Return ``url`` without query string, fragment or credentials, for logs and messages."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"
