"""IndexNow (https://www.indexnow.org/documentation): announce changed URLs of one host.

Google's and Bing's sitemap ping endpoints are gone; IndexNow is what search engines (Bing,
Yandex, Seznam, Naver…) read instead. One POST of JSON ``{host, key, keyLocation, urlList}``
with at most 10,000 URLs. Answers: 200/202 accepted; 400 bad request, 403 key not valid, 422
URLs not of this host or key mismatch (permanent); 429 too many requests (try later). The key
is sent in the body only, and is masked in any text we keep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from broxiva import http
from broxiva.http.errors import HttpError

logger = logging.getLogger(__name__)

MAX_URLS = 10_000
PERMANENT = (400, 403, 422)
REASONS = {
    400: "bad request (invalid format)",
    403: "forbidden (key not valid: not found at keyLocation or does not match)",
    422: "unprocessable (URLs do not belong to the host, or the key does not match the protocol)",
    429: "too many requests (potential spam)",
}


@dataclass(frozen=True)
class Submission:
    """What one POST achieved: ``accepted``, refused for good (``permanent``), or to try again."""

    status: int | None
    accepted: bool
    permanent: bool
    reason: str


def submit(*, host: str, key: str, urls: list[str]) -> Submission:
    if not urls or len(urls) > MAX_URLS:
        raise ValueError(f"IndexNow takes 1 to {MAX_URLS} URLs per request, not {len(urls)}")
    body = {"host": host, "key": key, "keyLocation": f"https://{host}/{key}.txt", "urlList": urls}
    try:
        response = http.post(
            settings.INDEXNOW_URL, json=body, headers={"Content-Type": "application/json; charset=utf-8"},
            timeout=30, max_redirects=0,
        )
    except HttpError as exc:
        logger.warning("indexnow host=%s urls=%d failed: %s", host, len(urls), exc)
        return Submission(None, accepted=False, permanent=False, reason=str(exc).replace(key, "***"))
    if response.status in (200, 202):
        logger.info("indexnow host=%s urls=%d status=%d", host, len(urls), response.status)
        return Submission(response.status, accepted=True, permanent=False, reason="")
    detail = " ".join(response.text.split())[:300].replace(key, "***")
    reason = f"HTTP {response.status}: {REASONS.get(response.status, 'unexpected answer')}"
    if detail:
        reason = f"{reason}: {detail}"
    permanent = response.status in PERMANENT
    logger.warning("indexnow host=%s urls=%d refused permanent=%s %s", host, len(urls), permanent, reason)
    return Submission(response.status, accepted=False, permanent=permanent, reason=reason)
