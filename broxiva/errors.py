"""Error tracking with Sentry (``SENTRY_DSN``): web requests and jobs, never a secret.

``settings.py`` calls ``init_sentry()`` when ``SENTRY_DSN`` is set, in every process (web, worker,
scheduler); unset, the SDK is never initialised and nothing is sent. sentry-sdk's own Django and
RQ integrations do the capturing: an unhandled view error, and a job that **failed for good**
(the RQ integration skips a failure that still has retries left, so a flaky provider does not
page anyone before the queue's policy gives up; a permanent error, ``transient=False``, fails at
once and is reported at once). Every job event is tagged with ``job_id``, ``queue`` (logical
name), ``attempt`` (1-based) and ``tenant`` from the job's log context (``broxiva.logs``), so an
event leads to the job in the dashboard and to its log lines.

What an event never carries (docs/operations.md, "Error tracking"):

- **Settings' secrets**: every setting whose name says it is one (the names Django's error pages
  hide, ``broxiva.reporting``) has its value replaced wherever it appears in an event, in
  messages, breadcrumbs, request data and the RQ job's description alike.
- **Credentials in URLs**: ``user:password@`` and query parameters named like a key, token,
  secret, signature or app id (``?app_id=…`` of Open Exchange Rates, ``?access_key=…`` of Fixer).
- **Local variables** (``stack_frame_variables`` off): a tenant's shop token or a provider
  key passes through frames under names no deny-list can anticipate.
- **Personal data and payloads** (sentry-sdk's ``data_collection``): no user, cookies or IP
  addresses, no request or response bodies (shops' webhooks carry customers), no job arguments,
  no SQL parameters, no LLM prompts; headers and query parameters named like a credential are
  masked by the SDK; its ``EventScrubber`` on top, recursive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

FILTERED = "[Filtered]"
_MIN_SECRET_LENGTH = 6  # shorter values ("1", "true", a port) would blank out unrelated text
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s:]*:[^/@\s]*@")
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:[\w.-]*(?:key|token|secret|signature|sig|password|passwd|app_id|appid|auth)[\w.-]*)=)[^&;#\s\"']+"
)


def init_sentry(dsn: str, *, environment: str, release: str | None, traces_sample_rate: float,
                settings_module: Any) -> None:
    """Initialise sentry-sdk for this process; ImproperlyConfigured names SENTRY_DSN when it is bad."""
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.rq import RqIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
    from sentry_sdk.utils import BadDsn

    secrets = tuple(secret_values(settings_module))
    try:
        sentry_sdk.init(
            dsn=dsn,
            environment=environment,
            release=release or None,
            integrations=[DjangoIntegration(), RqIntegration()],
            traces_sample_rate=traces_sample_rate,
            # sentry-sdk's structured successor of send_default_pii: what integrations may collect.
            data_collection={
                "user_info": False,
                "cookies": {"mode": "off"},
                "http_headers": {"request": {"mode": "denylist"}},  # auth, token, key, cookie… always masked
                "http_bodies": [],
                "url_query_params": {"mode": "denylist"},
                "queues": False,  # a job's arguments
                "stack_frame_variables": False,
                "database_query_data": False,
                "gen_ai": {"inputs": False, "outputs": False},
            },
            event_scrubber=EventScrubber(
                denylist=[*DEFAULT_DENYLIST, "access_key", "app_id", "signature", "dsn", "webhook_secret"],
                recursive=True,
            ),
            before_send=lambda event, hint: scrub(tag_job(event), secrets),
            before_send_transaction=lambda event, hint: scrub(tag_job(event), secrets),
            before_breadcrumb=lambda crumb, hint: scrub(crumb, secrets),
        )
    except BadDsn:
        # The DSN itself is not repeated: it holds the project's key.
        raise ImproperlyConfigured("SENTRY_DSN is not a valid Sentry DSN (https://<key>@<host>/<project>).") from None


def secret_values(settings_module: Any) -> Iterable[str]:
    """Yield the values of the settings whose names say they are secret (longest first)."""
    from broxiva.reporting import SettingsFilter

    hidden = SettingsFilter.hidden_settings
    found: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, str):
            if len(value) >= _MIN_SECRET_LENGTH:
                found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)

    for name in dir(settings_module):
        if name.isupper() and hidden.search(name):
            collect(getattr(settings_module, name, None))
    # Credentials under innocent names: DATABASES' PASSWORD, RQ_QUEUES' URL, CACHES' LOCATION.
    for database in (getattr(settings_module, "DATABASES", None) or {}).values():
        collect(database.get("PASSWORD", ""))
    for queue in (getattr(settings_module, "RQ_QUEUES", None) or {}).values():
        collect(queue.get("URL", ""))
    for cache in (getattr(settings_module, "CACHES", None) or {}).values():
        collect(cache.get("LOCATION", ""))
    # URLs count (a Slack webhook's token is in its path); file paths and URL paths (STATIC_URL,
    # LOGIN_URL, FCM_CREDENTIALS_FILE) are where a secret is, not the secret.
    return sorted((v for v in found if not v.startswith("/")), key=len, reverse=True)


def tag_job(event: dict[str, Any]) -> dict[str, Any]:
    """Tag an event raised inside a job with its job id, queue, attempt and tenant."""
    from broxiva.logs import current

    context = current()
    if context is not None:
        tags = event.setdefault("tags", {})
        tags.update({"job_id": context.job_id, "queue": context.queue, "attempt": str(context.attempt)})
        if context.tenant:
            tags["tenant"] = context.tenant
    return event


def scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    """Return ``value`` (an event, a breadcrumb) with every secret and URL credential masked."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, FILTERED)
        return _SECRET_QUERY.sub(lambda m: m.group(1) + FILTERED, _URL_USERINFO.sub(FILTERED + "@", value))
    if isinstance(value, dict):
        return {key: scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item, secrets) for item in value]
    if isinstance(value, tuple):
        return tuple(scrub(item, secrets) for item in value)
    return value
