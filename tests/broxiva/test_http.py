"""broxiva.http against real local servers: deadlines, size caps, redirects, typed errors, logs."""

from __future__ import annotations

import json
import logging

import pytest
from werkzeug import Response as WerkzeugResponse

from broxiva import http
from tests.broxiva.http_servers import RawServer, drip, response

pytestmark = pytest.mark.timeout(60)

SECRET = "app-id-0123456789-secret"


def ours(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "broxiva.http"]


class DeadlineTests:
    def test_it_ends_a_slowly_dripping_body_at_the_deadline(self):
        whole = response(b'{"rates": {}}' + b" " * 448, content_type="application/json")  # 461-byte body
        with RawServer(lambda request: drip(whole, size=10), pause=0.25) as server:  # 40 bytes/s: ~11 s
            with pytest.raises(http.Timeout) as info:
                http.get(server.url(f"/latest.json?app_id={SECRET}"), timeout=1)
            assert server.completed == 0  # the client hung up mid-body, it did not sit through the drip
        assert info.value.transient is True
        assert "timed out after 1s" in str(info.value) and SECRET not in str(info.value)

    def test_it_ends_slowly_dripping_headers_at_the_deadline(self):
        whole = response(b"ok", headers={"X-Padding": "p" * 200})
        with RawServer(lambda request: drip(whole, start=10, size=5), pause=0.25) as server:
            with pytest.raises(http.Timeout):
                http.get(server.url("/"), timeout=1)
            assert server.completed == 0

    def test_a_server_that_never_answers_times_out(self):
        with RawServer(lambda request: [b"", b"HTTP/1.1 200 OK\r\n"], pause=30) as server:
            with pytest.raises(http.Timeout):
                http.post(server.url("/hook"), json={"event": "x"}, timeout=0.5)
            assert server.requests[0].body == b'{"event": "x"}'

    def test_a_body_cut_short_is_a_transient_connection_error(self):
        whole = response(b"0123456789")[:-4]  # Content-Length says 10, 6 arrive, then the server hangs up
        with RawServer(lambda request: [whole]) as server:
            with pytest.raises(http.ConnectionFailed) as info:
                http.get(server.url("/"), timeout=5)
        assert info.value.transient is True

    def test_nothing_listening_is_a_transient_connection_error(self):
        with pytest.raises(http.ConnectionFailed) as info:
            http.get(f"http://127.0.0.1:9/?key={SECRET}", timeout=2)  # the discard port: nothing listens
        assert info.value.transient is True and SECRET not in str(info.value)


class SizeTests:
    def test_it_refuses_a_declared_length_over_the_cap(self, httpserver):
        httpserver.expect_request("/big").respond_with_data(b"x" * 2000)
        with pytest.raises(http.TooLarge) as info:
            http.get(httpserver.url_for("/big"), max_bytes=1000)
        assert info.value.transient is False

    def test_it_stops_reading_an_undeclared_body_at_the_cap(self):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
        with RawServer(lambda request: [head] + [b"x" * 1000] * 50) as server:  # no Content-Length
            with pytest.raises(http.TooLarge):
                http.get(server.url("/"), max_bytes=10_000)

    def test_a_body_at_the_cap_is_read_whole(self, httpserver):
        httpserver.expect_request("/exact").respond_with_data(b"x" * 1000)
        assert len(http.get(httpserver.url_for("/exact"), max_bytes=1000).body) == 1000


class ResponseTests:
    def test_it_returns_status_headers_body_and_final_url(self, httpserver):
        httpserver.expect_request("/rates", query_string={"base": "EUR"}).respond_with_json({"EUR": 1})
        result = http.get(httpserver.url_for("/rates"), params={"base": "EUR"})
        assert (result.status, result.ok, result.content_type) == (200, True, "application/json")
        assert result.json() == {"EUR": 1} and json.loads(result.text) == {"EUR": 1}
        assert result.url == httpserver.url_for("/rates") + "?base=EUR"
        assert result.elapsed > 0

    def test_it_names_the_project_in_the_user_agent(self, httpserver):
        httpserver.expect_request("/", headers={"User-Agent": http.USER_AGENT}).respond_with_data("ok")
        assert http.get(httpserver.url_for("/")).status == 200
        assert "Broxiva" in http.USER_AGENT

    def test_it_decodes_text_in_the_declared_charset(self, httpserver):
        httpserver.expect_request("/").respond_with_data("Zürich".encode("latin-1"),
                                                         content_type="text/plain; charset=iso-8859-1")
        assert http.get(httpserver.url_for("/")).text == "Zürich"

    @pytest.mark.parametrize("status, transient", [(500, True), (503, True), (429, True), (408, True),
                                                   (404, False), (400, False), (401, False)])
    def test_raise_for_status_types_the_error(self, httpserver, status, transient):
        httpserver.expect_request("/").respond_with_data("no", status=status, headers={"Retry-After": "30"})
        result = http.get(httpserver.url_for("/"))
        assert result.status == status  # request() itself returns any status
        with pytest.raises(http.HttpStatusError) as info:
            result.raise_for_status()
        assert info.value.transient is transient and info.value.status == status
        assert info.value.retry_after == (30 if status in (429, 503) else None)

    def test_it_refuses_a_url_it_cannot_call(self):
        for url in ("not a url", "ftp://127.0.0.1/file", "http://"):
            with pytest.raises(http.HttpError) as info:
                http.get(url)
            assert info.value.transient is False


class RedirectTests:
    def test_it_follows_redirects_itself(self, httpserver):
        httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new"})
        httpserver.expect_request("/new").respond_with_data("here")
        result = http.get(httpserver.url_for("/old"))
        assert (result.status, result.body, result.url) == (200, b"here", httpserver.url_for("/new"))

    def test_a_303_turns_a_post_into_a_get_and_a_307_keeps_it(self, httpserver):
        httpserver.expect_request("/see-other", method="POST").respond_with_data(
            "", status=303, headers={"Location": "/result"})
        httpserver.expect_request("/result", method="GET").respond_with_data("got")
        httpserver.expect_request("/temporary", method="POST").respond_with_data(
            "", status=307, headers={"Location": "/again"})
        httpserver.expect_request("/again", method="POST", data=b"payload").respond_with_data("posted")
        assert http.post(httpserver.url_for("/see-other"), data=b"payload").body == b"got"
        assert http.post(httpserver.url_for("/temporary"), data=b"payload").body == b"posted"

    def test_it_drops_credentials_on_a_redirect_to_another_host(self, httpserver):
        seen = []

        def record(request):
            seen.append(request.headers.get("Authorization"))
            return WerkzeugResponse("ok")

        other = httpserver.url_for("/landing").replace("localhost", "127.0.0.1")
        if other == httpserver.url_for("/landing"):
            other = other.replace("127.0.0.1", "localhost")
        httpserver.expect_request("/start").respond_with_data("", status=302, headers={"Location": other})
        httpserver.expect_request("/landing").respond_with_handler(record)
        http.get(httpserver.url_for("/start"), headers={"Authorization": "Bearer s3cret"})
        assert seen == [None]

    def test_too_many_redirects_is_an_error_and_none_allowed_returns_the_redirect(self, httpserver):
        httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
        with pytest.raises(http.TooManyRedirects):
            http.get(httpserver.url_for("/loop"), max_redirects=3)
        assert len(httpserver.log) == 4
        assert http.get(httpserver.url_for("/loop"), max_redirects=0).status == 302

    def test_a_redirect_to_another_scheme_is_refused(self, httpserver):
        httpserver.expect_request("/").respond_with_data("", status=302, headers={"Location": "file:///etc/passwd"})
        with pytest.raises(http.InvalidUrl):
            http.get(httpserver.url_for("/"))


class LoggingTests:
    def test_it_logs_method_url_status_and_size_without_the_query(self, httpserver, caplog):
        httpserver.expect_request("/latest.json").respond_with_data("12345")
        with caplog.at_level(logging.INFO, logger="broxiva.http"):
            http.get(httpserver.url_for("/latest.json") + f"?app_id={SECRET}")
        [line] = ours(caplog)
        assert line.startswith("http GET http://") and "/latest.json status=200 bytes=5 ms=" in line
        assert SECRET not in line

    def test_it_logs_failures_without_the_query_or_credentials(self, caplog):
        with caplog.at_level(logging.INFO, logger="broxiva.http"), pytest.raises(http.ConnectionFailed):
            http.get(f"http://user:{SECRET}@127.0.0.1:9/x?token={SECRET}", timeout=2)
        [line] = ours(caplog)
        assert line.startswith("http GET http://127.0.0.1:9/x failed") and SECRET not in line

    def test_safe_url_drops_query_fragment_and_userinfo(self):
        assert http.safe_url("https://u:p@api.example.com:8443/v1/x?key=k#frag") == "https://api.example.com:8443/v1/x"
        assert http.safe_url("http://[::1]:8080/a?b") == "http://[::1]:8080/a"
