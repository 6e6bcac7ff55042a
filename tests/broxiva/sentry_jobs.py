"""Jobs for the error-tracking tests: failures that carry secrets the events must not."""

from __future__ import annotations

from django.conf import settings


class BadCredentials(Exception):
    transient = False  # a permanent error: the worker fails the job without using its retries


def fails_with_secrets(tenant_id: int) -> None:
    key = settings.ANTHROPIC_API_KEY  # a local variable under a name no deny-list knows
    url = f"https://rates.example.test/latest.json?app_id={settings.OPEN_EXCHANGE_RATES_APP_ID}&base=USD"
    raise RuntimeError(f"provider refused {key} at {url} via redis://:hunter2-redis@cache.internal:6379/0")


def fails_permanently(tenant_id: int) -> None:
    raise BadCredentials(f"the shop refused our token {settings.FIXER_API_KEY}")
