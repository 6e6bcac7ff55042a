"""Staff confirmation of held-back rates (the admin action calls this)."""

from __future__ import annotations

import logging
from collections import defaultdict

from broxiva.locks import with_lock
from fx.services import cache
from fx.services.cache import CachedRate, epoch
from fx.services.refresh import LOCK_RESOURCE
from fx.services.store import confirm_held

logger = logging.getLogger(__name__)


def rates_confirm(*, ids: list[int]) -> int:
    """Publish the held rates ``ids`` (others are ignored); return how many were confirmed.

    The cache takes a confirmed rate only if nothing newer is cached for its pair.
    """
    # Under the refresh lock: publishing compares with the cached rates and must not interleave
    # with a refresh doing the same.
    with with_lock(LOCK_RESOURCE, ttl_seconds=30, wait_time_ms=30_000):
        rows = confirm_held(list(ids))
        tables: dict[str, dict[str, CachedRate]] = defaultdict(dict)
        for row in sorted(rows, key=lambda r: r.as_of):
            tables[row.base_currency][row.quote_currency] = CachedRate(row.rate, epoch(row.as_of), row.provider)
        if tables:
            cache.publish(dict(tables))
    from fx.services.rates import reset_local_cache

    reset_local_cache()
    logger.info("fx held rates confirmed count=%d ids=%s", len(rows), ",".join(str(r.id) for r in rows))
    return len(rows)
