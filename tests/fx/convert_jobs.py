"""A job that converts prices, as product or sitemap jobs will: importable by dotted path."""

from __future__ import annotations

import time
from decimal import Decimal

import redis
from django.conf import settings

from fx.services import convert


def convert_price_job(marker: str, amount: str, from_currency: str, to_currency: str) -> str:
    redis.Redis.from_url(settings.REDIS_URL).rpush(f"test:attempts:{marker}", repr(time.time()))
    return str(convert(Decimal(amount), from_currency, to_currency))
