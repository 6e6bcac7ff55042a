"""The kernel's own periodic jobs (entries in ``broxiva/schedules.py``).

Each is thin: call the operation, return a small summary for the dashboard.
"""

from __future__ import annotations

from typing import Any


def queue_health_check_job() -> dict[str, Any]:
    """Evaluate queue health and alert on state changes (and reminders while critical)."""
    from broxiva.alerts import check_queues

    alerts = check_queues()
    return {"alerts": [alert.pk for alert in alerts]}


def retention_sweep_job() -> dict[str, Any]:
    """Apply every queue's keep_completed / keep_failed."""
    from broxiva.retention import trim_all

    reports = trim_all()
    return {r.queue: {"finished": r.finished, "failed": r.failed} for r in reports if r.finished or r.failed}


def recovery_sweep_job() -> dict[str, Any]:
    """Find jobs abandoned by dead workers on every queue and hand them to their retry policy."""
    from broxiva.recovery import recover_abandoned

    found = recover_abandoned()
    return {"abandoned": found}


def outbox_relay_job() -> dict[str, Any]:
    """Push the outbox jobs that their commit hook could not push (Redis was unavailable)."""
    from broxiva.outbox import relay

    return relay().as_dict()
