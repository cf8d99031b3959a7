"""The local gateway against hostile or broken clients, over raw sockets.

Whatever arrives, the answer is an API Gateway-like problem+json response (or a closed
connection), never an HTML page, a hang or a silently dropped request; and a request
body is framed exactly one way, so nothing in it can be read as a second request.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import time
from dataclasses import dataclass
from typing import Any

import pytest

from ledgerline.local import gateway as gateway_module
from ledgerline.local.gateway import API_GATEWAY_MAX_BODY, LocalGateway

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


class _Recorded(io.BytesIO):
    """Received bytes as http.client reads a response; still readable after it (to see
    whether anything followed the first response)."""

    def makefile(self, mode: str) -> _Recorded:
        return self

    def close(self) -> None:
        pass


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    closed: bool  # the server closed the connection after answering
    rest: bytes  # whatever the server sent after the first response

    def problem(self) -> dict[str, Any]:
        assert self.headers["Content-Type"] == "application/problem+json", (self.headers, self.body)
        problem = json.loads(self.body)
        assert set(problem) >= PROBLEM_FIELDS, problem
        assert problem["status"] == self.status
        return problem


def _receive(sock: socket.socket, wait: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes the connection or ``wait`` runs out."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return b"".join(chunks), True
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def exchange(
    server: LocalGateway, raw: bytes, *, method: str = "GET", wait: float = 5.0, half_close: bool = False
) -> Reply:
    """Send ``raw`` on a new connection; the first response, and whether the server then
    closed the connection. Tests send no bytes the server will not read: unread bytes
    make the kernel reset the connection, which can swallow the response."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=wait) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        data, closed = _receive(sock, wait)
    stream = _Recorded(data)
    response = http.client.HTTPResponse(stream, method=method)  # type: ignore[arg-type]
    response.begin()
    body = response.read()
    return Reply(response.status, response.headers, body, closed, stream.read())


def request(head: str, body: bytes = b"") -> bytes:
    """A request from its head lines (CRLF added); a Host header unless one is given."""
    lines = head.strip("\n").split("\n")
    if not any(line.lower().startswith("host:") for line in lines[1:]):
        lines.insert(1, "Host: localhost")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.fixture(scope="module")
def impatient(gateway) -> LocalGateway:
    """A gateway that waits one second for the bytes of a request."""
    gw = LocalGateway(port=0, read_timeout=1).start()
    yield gw
    gw.stop()


@pytest.fixture
def echo(monkeypatch) -> list[dict[str, Any]]:
    """Every route's handler replaced by one that records its event and answers 200."""
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append(event)
        return {"statusCode": 200, "body": "{}"}

    monkeypatch.setattr(gateway_module, "_handler_for", lambda route: handler)
    return events


# ------------------------------------------------------------------------ methods


@pytest.mark.parametrize("method", ["TRACE", "FOO", "PROPFIND", "get", "CONNECT"])
def test_an_unknown_method_on_a_known_path_is_a_405_problem_with_allow(gateway, method):
    reply = exchange(gateway, request(f"{method} /v1/health HTTP/1.1\nConnection: close"))

    assert reply.status == 405
    assert reply.headers["Allow"] == "GET"
    assert reply.problem()["code"] == "method_not_allowed"


@pytest.mark.parametrize("method", ["TRACE", "FOO"])
def test_an_unknown_method_on_an_unknown_path_is_a_404_problem(gateway, method):
    reply = exchange(gateway, request(f"{method} /v1/no-such-thing HTTP/1.1\nConnection: close"))

    assert reply.status == 404
    assert reply.problem()["code"] == "not_found"


def test_a_head_request_is_answered_without_a_body(gateway):
    reply = exchange(gateway, request("HEAD /v1/no-such-thing HTTP/1.1\nConnection: close"), method="HEAD")

    assert reply.status == 404
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert int(reply.headers["Content-Length"]) > 0
    assert reply.body == b"" and reply.rest == b""


# ------------------------------------------------------------------------ http.server's own refusals


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GARBAGE\r\n", 400, "bad_request"),
        (b"GET / HTTP/1.1 extra\r\n", 400, "bad_request"),
        (b"GET /v1/health HTTP/x.y\r\n", 400, "bad_request"),
        (b"POST /v1/health\r\n", 400, "bad_request"),  # HTTP/0.9 allowed GET only
        (b"GET /v1/health HTTP/2.0\r\n", 505, "http_version_not_supported"),
        (b"GET /" + b"a" * 65532, 414, "uri_too_long"),
        (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * (65537 - 8), 431, "request_header_fields_too_large"),
        (
            b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)),
            431,
            "request_header_fields_too_large",
        ),
    ],
    ids=[
        "no-version",
        "four-words",
        "bad-version",
        "http09-post",
        "http2",
        "uri-too-long",
        "long-header",
        "101-headers",
    ],
)
def test_malformed_requests_are_answered_with_a_problem_and_closed(gateway, raw, status, code):
    # Each raw request ends where the server stops reading (see exchange).
    reply = exchange(gateway, raw)

    assert reply.status == status
    assert reply.problem()["code"] == code
    assert reply.closed


def test_a_request_line_error_on_head_has_no_body(gateway):
    reply = exchange(gateway, b"HEAD /v1/health HTTP/x.y\r\n", method="HEAD")

    assert reply.status == 400
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.body == b"" and reply.rest == b""


# ------------------------------------------------------------------------ Content-Length


@pytest.mark.parametrize("value", ["abc", "-1", "+5", "5, 5", "0x5", "1e3", "", "5 5"])
def test_a_content_length_that_is_not_a_number_is_a_400_and_closes(gateway, value):
    reply = exchange(gateway, request(f"POST /v1/health HTTP/1.1\nContent-Length: {value}"))

    assert reply.status == 400
    assert reply.problem()["code"] == "bad_request"
    assert reply.closed


@pytest.mark.parametrize("value", [str(API_GATEWAY_MAX_BODY + 1), "9" * 5000])
def test_a_content_length_over_the_limit_is_a_413_and_closes(gateway, value):
    reply = exchange(gateway, request(f"POST /v1/health HTTP/1.1\nContent-Length: {value}"))

    assert reply.status == 413
    assert reply.problem()["code"] == "payload_too_large"
    assert reply.closed


def test_a_content_length_with_leading_zeros_is_still_its_number(gateway):
    reply = exchange(
        gateway, request("POST /v1/health HTTP/1.1\nContent-Length: 0000000005\nConnection: close", b"hello")
    )

    assert reply.status == 405  # the body was framed by the length: no second request from it
    assert reply.rest == b""


@pytest.mark.parametrize("lengths", [("5", "5"), ("5", "6")], ids=["repeated", "conflicting"])
def test_more_than_one_content_length_is_a_400_and_closes(gateway, lengths):
    head = "POST /v1/health HTTP/1.1\n" + "\n".join(f"Content-Length: {n}" for n in lengths)

    reply = exchange(gateway, request(head))

    assert reply.status == 400
    assert reply.problem()["code"] == "bad_request"
    assert reply.closed


def test_a_body_shorter_than_its_content_length_times_out_with_a_408(impatient):
    started = time.monotonic()

    reply = exchange(impatient, request("POST /v1/health HTTP/1.1\nContent-Length: 10", b"abc"))

    assert reply.status == 408
    assert reply.problem()["code"] == "request_timeout"
    assert reply.closed
    assert time.monotonic() - started < 4


def test_a_body_cut_short_by_the_client_is_a_400(gateway):
    reply = exchange(gateway, request("POST /v1/health HTTP/1.1\nContent-Length: 10", b"abc"), half_close=True)

    assert reply.status == 400
    assert reply.problem()["code"] == "bad_request"
    assert reply.closed


def test_a_connection_that_stops_sending_headers_is_closed(impatient):
    _, closed = _receive_after(impatient, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")

    assert closed


def test_an_idle_connection_is_closed_after_the_read_timeout(impatient):
    _, closed = _receive_after(impatient, b"")

    assert closed


def _receive_after(server: LocalGateway, raw: bytes) -> tuple[bytes, bool]:
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=5) as sock:
        sock.sendall(raw)
        return _receive(sock, 4.0)


def test_a_body_on_a_get_is_read_and_not_taken_for_the_next_request(gateway, echo):
    smuggled = request("GET /v1/no-such-thing HTTP/1.1\nConnection: close")
    first = request(f"GET /v1/health HTTP/1.1\nContent-Type: text/plain\nContent-Length: {len(smuggled)}", smuggled)

    reply = exchange(gateway, first + request("GET /v1/health HTTP/1.1\nConnection: close"))

    assert reply.status == 200
    assert reply.rest.startswith(b"HTTP/1.1 200 ")
    assert [e["rawPath"] for e in echo] == ["/v1/health", "/v1/health"]
    assert echo[0]["body"] == smuggled.decode()


# ------------------------------------------------------------------------ Transfer-Encoding


def test_a_chunked_body_is_decoded_and_handed_to_the_handler(gateway, echo):
    chunked = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    head = "POST /v1/auth/login HTTP/1.1\nContent-Type: text/plain\nTransfer-Encoding: chunked\nConnection: close"

    reply = exchange(gateway, request(head, chunked))

    assert reply.status == 200, reply.body
    assert echo[-1]["body"] == "hello, world"
    assert echo[-1]["headers"]["content-length"] == "12"
    assert "transfer-encoding" not in echo[-1]["headers"]


def test_a_chunked_body_is_not_taken_for_the_next_request(gateway):
    smuggled = request("GET /v1/no-such-thing HTTP/1.1\nConnection: close")
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    first = request("POST /v1/health HTTP/1.1\nTransfer-Encoding: chunked", chunked)

    reply = exchange(gateway, first + request("GET /v1/health HTTP/1.1\nConnection: close"))

    assert reply.status == 405
    assert reply.rest.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(
    ("chunks", "status"),
    [
        (b"zz\r\n", 400),
        (b"-5\r\n", 400),
        (b"0x5\r\n", 400),
        (b"1_0\r\n", 400),
        (b"5\r\nhelloXX", 400),  # no CRLF after the data
        (b"%x\r\n" % (API_GATEWAY_MAX_BODY + 1), 413),
        (b"ffffffffffffffffffff\r\n", 400),
    ],
    ids=["not-hex", "negative", "0x", "underscore", "no-crlf", "over-limit", "absurd"],
)
def test_a_malformed_or_oversized_chunked_body_is_refused_and_closes(gateway, chunks, status):
    reply = exchange(gateway, request("POST /v1/health HTTP/1.1\nTransfer-Encoding: chunked", chunks))

    assert reply.status == status
    reply.problem()
    assert reply.closed


def test_a_chunked_body_that_stops_arriving_times_out_with_a_408(impatient):
    reply = exchange(impatient, request("POST /v1/health HTTP/1.1\nTransfer-Encoding: chunked", b"a\r\nabc"))

    assert reply.status == 408
    assert reply.problem()["code"] == "request_timeout"
    assert reply.closed


@pytest.mark.parametrize(
    "head",
    [
        "Transfer-Encoding: gzip",
        "Transfer-Encoding: gzip, chunked",
        "Transfer-Encoding: chunked\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\nContent-Length: 5",
    ],
    ids=["gzip", "gzip-chunked", "twice", "with-content-length"],
)
def test_other_or_ambiguous_transfer_encodings_are_refused_and_close(gateway, head):
    reply = exchange(gateway, request(f"POST /v1/health HTTP/1.1\n{head}"))

    assert reply.status in (400, 501)
    reply.problem()
    assert reply.closed


# ------------------------------------------------------------------------ headers and target


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        # A bare CR: http.client splits a header there, a proxy in front would not.
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 0\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n",
        b"GET /v1/he\x01alth HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://[/v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nHost: <script>\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\n\r\n",
    ],
    ids=[
        "nul",
        "bare-cr",
        "folded",
        "space-before-colon",
        "ctl-in-path",
        "bad-url",
        "two-hosts",
        "bad-host",
        "no-host",
    ],
)
def test_malformed_headers_or_targets_are_a_400_problem_and_close(gateway, raw):
    reply = exchange(gateway, raw)

    assert reply.status == 400
    assert reply.problem()["code"] == "bad_request"
    assert reply.closed


def test_an_http_1_0_request_needs_no_host(gateway):
    reply = exchange(gateway, b"GET /v1/health HTTP/1.0\r\n\r\n")

    assert reply.status == 200


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": 200, "headers": {"Location": "/x\r\nSet-Cookie: evil=1"}, "body": "{}"},
        {"statusCode": 200, "headers": {"X-Name": "\u2603"}, "body": "{}"},
        {"statusCode": "abc"},
        {"statusCode": 42},
        {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True},
    ],
    ids=["crlf-in-header", "non-latin1-header", "status-not-a-number", "status-out-of-range", "bad-base64"],
)
def test_a_handler_result_that_cannot_be_sent_is_a_500_problem(gateway, monkeypatch, result):
    monkeypatch.setattr(gateway_module, "_handler_for", lambda route: lambda event, context: result)

    reply = exchange(gateway, request("GET /v1/health HTTP/1.1\nConnection: close"))

    assert reply.status == 500
    assert reply.problem()["code"] == "internal_error"
    assert "evil" not in str(reply.headers)
