"""Product sync services: runs (``runs``), the page engine (``engine``), webhooks, conflicts."""

from __future__ import annotations

from products.services.conflicts import resolve_conflict
from products.services.runs import schedule_deltas, start_sync, sync_run

__all__ = ["resolve_conflict", "schedule_deltas", "start_sync", "sync_run"]
