from __future__ import annotations

import pytest

from tests.domains.dns_server import DnsServer

LOOPBACK = ["127.0.0.0/8"]


@pytest.fixture
def zone(settings):
    """A local authoritative DNS server the checks ask (short timeouts: a silent server costs 1.5 s)."""
    with DnsServer() as server:
        settings.DNS_NAMESERVERS = [server.address]
        settings.DNS_TIMEOUT = 0.5
        settings.DNS_LIFETIME = 1.5
        yield server


@pytest.fixture
def web(settings, httpserver):
    """A local HTTP server as the tenant's site: http on its port, https on a closed one."""
    settings.OUTBOUND_ALLOWED_NETWORKS = LOOPBACK
    settings.DOMAIN_HTTP_PORT = httpserver.port
    settings.DOMAIN_HTTPS_PORT = _closed_port()
    return httpserver


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once the block ends: a connection there is refused


def make_domain(tenant, name: str, method: str = "dns_txt", **fields):
    from domains.models import TenantDomain
    from domains.services.lifecycle import new_token

    return TenantDomain.objects.create(tenant=tenant, domain=name, method=method, token=fields.pop("token", None)
                                       or new_token(), **fields)
