"""The destination guard of broxiva.http for URLs that tenants give us.

Traffic goes to loopback only: the private, link-local and other ranges are tested on the
classifier, never by connecting. Refusals are shown to happen without a connection (the local
server on that port accepts nothing). Names are answered by a stand-in for getaddrinfo() where
a test needs a name to resolve (or to change its answer, as a rebinding DNS server does).
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from broxiva import http
from broxiva.http import guard
from tests.broxiva.http_servers import RawServer, redirect, response

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


def ok(request) -> list[bytes]:
    return [response("hello")]


class ClassifierTests:
    @pytest.mark.parametrize("address, reason", [
        ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("0.0.0.0", "unspecified"),  # noqa: S104
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.1", "private"),
        ("100.64.0.1", "carrier-grade NAT"), ("100.127.255.254", "carrier-grade NAT"),
        ("169.254.169.254", "link-local"), ("169.254.0.1", "link-local"),
        ("224.0.0.251", "multicast"), ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("192.0.2.10", "reserved"),
        ("198.18.0.1", "reserved"), ("203.0.113.5", "reserved"),
        ("::", "unspecified"), ("::1", "loopback"), ("fc00::1", "unique-local"), ("fd12:3456::1", "unique-local"),
        ("fe80::1", "link-local"), ("ff02::1", "multicast"), ("2001:db8::1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"), ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::", "loopback"), ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 127.0.0.1, 169.254.169.254
        ("64:ff9b::7f00:1", "loopback"), ("64:ff9b::a00:1", "private"),  # NAT64 of 127.0.0.1, 10.0.0.1
        ("::127.0.0.1", "loopback"),  # IPv4-compatible (deprecated) form
        ("[::1]", "loopback"),
    ])
    def test_it_refuses_non_public_addresses_and_names_why(self, address, reason):
        assert http.is_public_address(address) is False
        assert guard.refusal_reason(address).startswith(reason)

    @pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.1",
                                         "172.32.0.1", "2606:4700:4700::1111", "2a00:1450:4001::200e",
                                         "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808"])
    def test_it_lets_public_addresses_through(self, address):
        assert http.is_public_address(address) is True

    @pytest.mark.parametrize("text", ["127.1", "0x7f000001", "2130706433", "localhost", ""])
    def test_it_classifies_addresses_only_not_spellings(self, text):
        with pytest.raises(ValueError):
            http.is_public_address(text)


@pytest.fixture
def loopback_server():
    with RawServer(ok) as server:
        yield server


@pytest.fixture
def resolver(monkeypatch):
    """Answer chosen names from ``answers[name]`` (one list of addresses per lookup, the last repeats)."""
    real = socket.getaddrinfo
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        queue = answers[host]
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        if not current:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in current]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


class RefusalTests:
    @pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "localhost", "0.0.0.0",  # noqa: S104
                                      "[::ffff:127.0.0.1]", "[::1]"])
    def test_it_refuses_loopback_in_any_spelling_without_connecting(self, settings, loopback_server, host):
        settings.OUTBOUND_ALLOWED_NETWORKS = []
        with pytest.raises(http.BlockedDestination) as info:
            http.get(loopback_server.url("/hook?token=t0k3n", host=host), untrusted=True)
        assert info.value.transient is False
        name = host.strip("[]")
        assert str(info.value).startswith(f"{name} resolves to ") and "address: refused" in str(info.value)
        assert "t0k3n" not in str(info.value)
        assert loopback_server.accepted == 0

    def test_a_trusted_call_to_the_same_server_is_not_guarded(self, settings, loopback_server):
        settings.OUTBOUND_ALLOWED_NETWORKS = []
        assert http.get(loopback_server.url("/")).body == b"hello"

    @pytest.mark.parametrize("url, why", [
        ("ftp://127.0.0.2/feed.csv", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http://shop:hunter2@127.0.0.2/feed", "credentials in the URL"),
    ])
    def test_it_refuses_other_schemes_and_credentials(self, settings, url, why):
        settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
        with pytest.raises(http.BlockedDestination, match=why) as info:
            http.get(url, untrusted=True)
        assert "hunter2" not in str(info.value)

    def test_an_unresolvable_name_is_a_transient_failure(self, resolver):
        answers, _ = resolver
        answers["gone.acme.test"] = [[]]
        with pytest.raises(http.ConnectionFailed, match="cannot resolve gone.acme.test") as info:
            http.get("http://gone.acme.test/", untrusted=True)
        assert info.value.transient is True


class AllowedNetworkTests:
    def test_an_allowed_network_is_reached_and_a_redirect_out_of_it_refused(self, settings, loopback_server):
        settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
        with RawServer(redirect(loopback_server.url("/internal")), host="127.0.0.2") as allowed:
            with RawServer(ok, host="127.0.0.2") as fine:
                assert http.get(fine.url("/"), untrusted=True).body == b"hello"
                assert fine.requests[0].headers["host"] == f"127.0.0.2:{fine.port}"
            with pytest.raises(http.BlockedDestination, match="127.0.0.1 resolves to 127.0.0.1, a loopback"):
                http.get(allowed.url("/start"), untrusted=True)
            assert allowed.accepted == 1
        assert loopback_server.accepted == 0

    def test_every_address_of_a_name_is_checked(self, settings, resolver, loopback_server):
        settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
        answers, _ = resolver
        answers["mixed.acme.test"] = [["127.0.0.2", "127.0.0.1"]]
        with pytest.raises(http.BlockedDestination, match="mixed.acme.test resolves to 127.0.0.1"):
            http.get(f"http://mixed.acme.test:{loopback_server.port}/", untrusted=True)
        assert loopback_server.accepted == 0

    def test_it_connects_to_the_checked_address_not_a_second_answer(self, settings, resolver):
        # A rebinding DNS server answers the check with an allowed address and the next lookup
        # with a refused one: the connection must go where the check looked.
        settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
        answers, lookups = resolver
        answers["shop.acme.test"] = [["127.0.0.2"], ["127.0.0.1"]]
        with RawServer(ok, host="127.0.0.2") as server:
            result = http.get(f"http://shop.acme.test:{server.port}/products.json", untrusted=True)
        assert result.body == b"hello" and lookups == ["shop.acme.test"]
        assert server.requests[0].headers["host"] == f"shop.acme.test:{server.port}"
        assert server.requests[0].target == "/products.json"

    def test_a_bad_network_stops_start_up(self, tmp_path):
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
        env.update(DJANGO_SETTINGS_MODULE="broxiva.settings", DEBUG="true", BROXIVA_VAR_DIR=str(tmp_path),
                   OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8, 10.0.0.1/8")
        done = subprocess.run([sys.executable, str(ROOT / "manage.py"), "check"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode != 0
        assert "OUTBOUND_ALLOWED_NETWORKS entry '10.0.0.1/8' is not a network" in done.stderr


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for shop.acme.test (its own CA in the tests)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=shop.acme.test", "-addext", "subjectAltName=DNS:shop.acme.test"],
                   check=True, capture_output=True)
    return cert, key


class TlsTests:
    def test_sni_and_the_certificate_check_use_the_name_while_the_socket_uses_the_address(
            self, settings, resolver, certificate):
        settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
        answers, _ = resolver
        answers["shop.acme.test"] = [["127.0.0.2"]]
        answers["other.acme.test"] = [["127.0.0.2"]]
        cert, key = certificate
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        names: list[str | None] = []
        context.sni_callback = lambda sock, name, ctx: names.append(name)
        with RawServer(ok, host="127.0.0.2", tls=context) as server:
            result = http.get(f"https://shop.acme.test:{server.port}/", untrusted=True, verify=str(cert))
            assert result.body == b"hello"
            assert names == ["shop.acme.test"]
            assert server.requests[0].headers["host"] == f"shop.acme.test:{server.port}"
            with pytest.raises(http.ConnectionFailed, match="certificate") as info:
                http.get(f"https://other.acme.test:{server.port}/", untrusted=True, verify=str(cert))
        assert info.value.transient is False


class ForkTests:
    def test_a_forked_work_horse_can_still_resolve_names(self, settings):
        # rq's worker forks a work horse per job: the resolver pool must not be the parent's,
        # whose threads do not survive the fork (every lookup would then time out).
        settings.OUTBOUND_ALLOWED_NETWORKS = []
        with pytest.raises(http.BlockedDestination):
            http.get("http://localhost:9/", untrusted=True, timeout=5)  # the parent's pool now has a thread
        pid = os.fork()
        if pid == 0:  # the child: refused after a lookup = the lookup ran
            try:
                http.get("http://localhost:9/", untrusted=True, timeout=5)
            except http.BlockedDestination:
                os._exit(0)
            except BaseException:
                os._exit(1)
            os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
