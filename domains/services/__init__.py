"""The domains app's services: add a domain, say what proves it, check it, sweep, staff actions."""

from domains.services.lifecycle import (
    add_domain,
    display_name,
    expected_record,
    job_id_for,
    mark_failed,
    regenerate_token,
    transition,
)
from domains.services.sweep import domains_sweep, expire_pending
from domains.services.verify import domain_verify, request_check, verify_now

__all__ = [
    "add_domain", "display_name", "domain_verify", "domains_sweep", "expected_record", "expire_pending", "job_id_for",
    "mark_failed", "regenerate_token", "request_check", "transition", "verify_now",
]
