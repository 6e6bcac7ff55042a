"""The domains app's errors: one base class, ``transient`` on each.

A transient error (a DNS timeout, SERVFAIL, no reachable nameserver, an HTTP timeout or 5xx) is
raised out of the job so the queue's policy retries it: it is not a check and never fails a
domain. "Not there yet" (NXDOMAIN, no answer, a wrong token, a 404) is not an error at all: it
is a check that found nothing (``domains.checks.Finding``).
"""

from __future__ import annotations


class DomainsError(Exception):
    transient: bool = False


class CheckUnavailable(DomainsError):
    """The check could not be made now (DNS or HTTP trouble on the way): retry it later."""

    transient = True
