"""What Django's error pages and error e-mails may show of the settings."""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class SettingsFilter(SafeExceptionReporterFilter):
    """Django's filter, plus settings that hold credentials inside a URL.

    Django hides settings whose names look secret (KEY, TOKEN, PASS…); ``REDIS_URL``, the cache
    ``LOCATION``, ``RQ_QUEUES``' ``URL`` and ``ALERT_WEBHOOK_URL`` (Slack embeds its token in the
    path) carry passwords and tokens under innocent names.
    """

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|LOCATION", flags=re.IGNORECASE
    )
