"""A local stand-in for API Gateway (HTTP API, payload format 2.0).

Each request is matched against the route table, turned into the same event API Gateway
would send (JWT authorizer claims included), and handed to the route's Lambda handler
in-process with a Lambda-like context. Requests are served on a thread each, so the
handlers see real concurrency. What cannot be parsed or framed one unambiguous way
(unknown methods, malformed headers, conflicting body lengths, stalled clients) is
refused with a problem+json response, as API Gateway refuses it before any Lambda runs.
"""

from __future__ import annotations

import base64
import importlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ledgerline import errors, routes
from ledgerline.auth import origin
from ledgerline.auth.authorizer import authorize_bearer, verify_credential
from ledgerline.crypto import masking
from ledgerline.errors import PROBLEM_JSON
from ledgerline.http.endpoint import problem_body

logger = logging.getLogger("ledgerline.gateway")

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024  # API Gateway refuses larger payloads itself
_TEXT_TYPES = ("application/json", "application/problem+json", "application/x-www-form-urlencoded", "text/")

Authorizer = Callable[[str], dict[str, Any]]


# The decision API Gateway's Lambda authorizer makes in AWS: API keys and access tokens.
default_authorizer: Authorizer = verify_credential


@dataclass
class LambdaContext:
    function_name: str
    aws_request_id: str
    timeout_seconds: int = 29
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def preload() -> None:
    """Import every route's module up front: concurrent first imports of the same
    package on several threads can see partially initialised modules."""
    for route in routes.ROUTES:
        importlib.import_module(route.handler)


def _handler_for(route: routes.Route) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    return importlib.import_module(route.handler).handler


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
    route: routes.Route | None,
    path_parameters: dict[str, str],
    claims: dict[str, Any] | None,
    request_id: str,
) -> dict[str, Any]:
    content_type = headers.get("content-type", "")
    textual = not body or any(content_type.startswith(t) for t in _TEXT_TYPES)
    try:
        text_body = body.decode() if textual else None
    except UnicodeDecodeError:
        text_body = None
    now = time.time()
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    route_key = f"{route.method} {route.path}" if route else "$default"
    request_context: dict[str, Any] = {
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": headers.get("host", "127.0.0.1"),
        "domainPrefix": "local",
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if claims is not None:
        request_context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": request_context,
        "isBase64Encoded": text_body is None,
    }
    if "cookie" in headers:
        event["cookies"] = [c.strip() for c in headers["cookie"].split(";")]
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = text_body if text_body is not None else base64.b64encode(body).decode()
    return event


# In a request line or a header value (a client's or a handler's), control characters
# other than HTAB are a bug or an attempt to split a message where a proxy would not.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_LOG_ESCAPES = str.maketrans({c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))})
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[\w\-.~%!$&'()*+,;=]+)(?::\d{1,5})?")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,8})[ \t]*(?:;[^\r\n]*)?\r\n")
_MAX_TRAILERS = 100

_DOMAIN_ERRORS: dict[int, type[errors.DomainError]] = {
    400: errors.BadRequest,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
    500: errors.InternalError,
}
# Refusals of the HTTP layer that have no domain error: (code, title) in the same style.
_PROTOCOL_ERRORS = {
    408: ("request_timeout", "Request timeout"),
    414: ("uri_too_long", "URI too long"),
    431: ("request_header_fields_too_large", "Request header fields too large"),
    501: ("not_implemented", "Not implemented"),
    505: ("http_version_not_supported", "HTTP version not supported"),
}


def _http_error(status: int, detail: str) -> errors.DomainError:
    """The problem for a refusal of the HTTP layer, in the shape of every other problem."""
    if status in _DOMAIN_ERRORS:
        return _DOMAIN_ERRORS[status](detail)
    err = errors.DomainError(detail)
    err.status = status
    err.code, err.title = _PROTOCOL_ERRORS.get(status, ("http_error", "Request refused"))
    return err


def _loggable(target: str) -> str:
    """The request target for the access log: query values masked like logged fields
    (decoded first, or ``access%5Ftoken`` would pass as a harmless name), and control
    characters escaped, as decoding could otherwise forge log lines."""
    path, _, query = target.partition("?")
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        path += "?" + "&".join(f"{key}={masking.scrub(value, key)}" for key, value in pairs)
    return masking.scrub_text(path).translate(_LOG_ESCAPES)


class _HeaderLines:
    """The request stream as http.client reads the header block, noting bare CRs: the
    email parser splits a header there, where a proxy in front of us would not."""

    def __init__(self, rfile: Any) -> None:
        self.rfile = rfile
        self.bare_cr = False

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self.rfile.readline(limit)
        self.bare_cr |= b"\r" in line.removesuffix(b"\n").removesuffix(b"\r")
        return line


class _Handler(BaseHTTPRequestHandler):
    server: LocalGateway
    protocol_version = "HTTP/1.1"
    # A request line without a version is answered with a status line and headers too
    # (HTTP/0.9 would be a bare body).
    default_request_version = "HTTP/1.0"
    # Headers and body are two writes: with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    @property
    def timeout(self) -> float:  # type: ignore[override]
        """The socket timeout StreamRequestHandler.setup applies to the connection."""
        return self.server.read_timeout

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method without a do_<METHOD> with an HTML 501; every
        # method goes through the route table instead (404, or 405 with Allow).
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.client_address[0], masking.scrub_text(format % args).translate(_LOG_ESCAPES))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _dispatch writes the access line, with the query masked

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (request line, URI or headers too long, ...) as problems."""
        self.log_error("code %d, message %s", code, message)
        detail = message or explain or self.responses.get(code, ("", "the request was refused"))[1]
        self._problem(_http_error(code, detail), {"Connection": "close"})

    def parse_request(self) -> bool:
        rfile, lines = self.rfile, _HeaderLines(self.rfile)
        self.rfile = lines  # type: ignore[assignment]
        try:
            if not super().parse_request():
                return False
        finally:
            self.rfile = rfile
        problem = self._malformed(lines.bare_cr)
        if problem:
            self.send_error(400, problem)
            return False
        return True

    def _malformed(self, bare_cr: bool) -> str | None:
        """Why the request line or headers are refused (as API Gateway would), if they are."""
        if bare_cr or _CONTROL.search(self.path) or any(_CONTROL.search(v) for v in self.headers.values()):
            return "control characters (NUL, a bare CR, line folding) are not allowed in the request line or headers"
        if self.headers.defects or self.headers.get_payload():
            # e.g. "Name : value": http.client would drop it and every header after it
            return "a header line is malformed; send Name: value"
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1 or (hosts and not _HOST.fullmatch(hosts[0].strip())):
            return "send one Host header: host[:port]"
        if not hosts and self.request_version >= "HTTP/1.1":
            return "HTTP/1.1 requests need a Host header"
        try:
            urlsplit(self.path)
        except ValueError:
            return "the request target is not a valid URL"
        return None

    def _dispatch(self) -> None:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        status = self._serve(request_id)
        if logger.isEnabledFor(logging.INFO):  # masking costs regex work on every request
            elapsed = (time.perf_counter() - started) * 1000
            logger.info("%s %s %s %.1fms", self.command.translate(_LOG_ESCAPES), _loggable(self.path), status, elapsed)

    def _serve(self, request_id: str) -> int:
        parts = urlsplit(self.path)
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            k = key.lower()
            headers[k] = f"{headers[k]},{value}" if k in headers else value
        try:
            body = self._read_body()
        except errors.DomainError as err:
            return self._refuse(err)
        except TimeoutError:
            return self._refuse(_http_error(408, f"the request body did not arrive within {self.timeout:g} s"))
        if "transfer-encoding" in headers:  # the handler sees the body as API Gateway passes it
            del headers["transfer-encoding"]
            headers["content-length"] = str(len(body))
        route, params, allowed = routes.match(self.command, parts.path)
        if route is not None and route.method != self.command:
            route = None  # methods are case-sensitive: "get" is not GET
        if route is None:
            if allowed:
                return self._problem(
                    errors.MethodNotAllowed(f"{self.command} is not allowed on {parts.path}; use {', '.join(allowed)}"),
                    {"Allow": ", ".join(sorted(set(allowed)))},
                )
            return self._problem(errors.NotFound(f"no route for {self.command} {parts.path}"))
        claims = None
        if not route.public:
            try:
                claims = self._authorize(headers)
            except errors.DomainError as err:
                return self._problem(err, {"WWW-Authenticate": 'Bearer realm="ledgerline"'})
        event = build_event(
            method=self.command,
            raw_path=parts.path,
            raw_query=parts.query,
            headers=headers,
            body=body,
            source_ip=self.client_address[0],
            route=route,
            path_parameters=params,
            claims=claims,
            request_id=request_id,
        )
        context = LambdaContext(function_name=route.name, aws_request_id=request_id)
        try:
            result = _handler_for(route)(event, context)
        except Exception:
            logger.exception("handler %s raised", route.handler)
            return self._problem(errors.InternalError("the handler failed; see the server log"))
        try:
            return self._write_result(result)
        except (ValueError, TypeError, AttributeError):
            logger.exception("handler %s returned a response that cannot be sent", route.handler)
            return self._problem(errors.InternalError("the handler's response is malformed; see the server log"))

    def _read_body(self) -> bytes:
        """The body, framed by exactly one Content-Length or by chunked coding. Anything
        ambiguous is refused: a proxy in front could frame it another way (smuggling)."""
        lengths = self.headers.get_all("Content-Length") or []
        codings = self.headers.get_all("Transfer-Encoding") or []
        if codings:
            if lengths:
                raise errors.BadRequest("send Content-Length or Transfer-Encoding, not both")
            if len(codings) > 1 or codings[0].strip().lower() != "chunked":
                raise _http_error(501, "the only Transfer-Encoding supported is chunked")
            return self._read_chunked()
        if not lengths:
            return b""
        if len(lengths) > 1:
            raise errors.BadRequest("send one Content-Length header")
        text = lengths[0].strip()
        if not (text.isascii() and text.isdigit()):
            raise errors.BadRequest("Content-Length must be a number of bytes")
        digits = text.lstrip("0") or "0"  # int() refuses over 4300 digits
        if len(digits) > 9 or int(digits) > API_GATEWAY_MAX_BODY:
            raise errors.PayloadTooLarge(f"the request body is over {API_GATEWAY_MAX_BODY} bytes")
        return self._read_exactly(int(digits))

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = _CHUNK_SIZE.fullmatch(self.rfile.readline(1024))
            if size is None:
                raise errors.BadRequest("the chunked body is malformed: expected a hex chunk size and CRLF")
            length = int(size[1], 16)
            if not length:
                break
            if len(body) + length > API_GATEWAY_MAX_BODY:
                raise errors.PayloadTooLarge(f"the request body is over {API_GATEWAY_MAX_BODY} bytes")
            body += self._read_exactly(length)
            if self._read_exactly(2) != b"\r\n":
                raise errors.BadRequest("the chunked body is malformed: expected CRLF after a chunk")
        for _ in range(_MAX_TRAILERS):  # trailer fields: read and dropped
            line = self.rfile.readline(65537)
            if line == b"\r\n":
                return bytes(body)
            if not line.endswith(b"\r\n"):
                raise errors.BadRequest("the chunked body is malformed: trailer fields must end with CRLF")
        raise errors.BadRequest(f"send at most {_MAX_TRAILERS} trailer fields")

    def _read_exactly(self, length: int) -> bytes:
        data: bytes = self.rfile.read(length)
        if len(data) < length:  # the client closed its side early
            raise errors.BadRequest("the body ended before its declared length")
        return data

    def _authorize(self, headers: dict[str, str]) -> dict[str, Any]:
        """The authorizer's claims, decided as the Lambda authorizer decides in AWS; its
        failures count against the client's address (X-Forwarded-For believed only from
        LEDGERLINE_TRUSTED_PROXIES, as the handlers believe it)."""
        ip = origin.client_ip(self.client_address[0], headers)
        return authorize_bearer(headers.get("authorization"), ip, verify=self.server.authorizer)

    def _write_result(self, result: dict[str, Any]) -> int:
        status = int(result.get("statusCode", 200))
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        headers = dict(result.get("headers") or {})
        for cookie in result.get("cookies") or []:
            headers.setdefault("Set-Cookie", cookie)
        self._send(status, payload, headers)
        return status

    def _problem(self, err: errors.DomainError, extra: dict[str, str] | None = None) -> int:
        headers = {"Content-Type": PROBLEM_JSON, **err.headers, **(extra or {})}
        self._send(err.status, problem_body(err).encode(), headers)
        return err.status

    def _refuse(self, err: errors.DomainError) -> int:
        """A problem after which the connection closes: the stream is no longer framed."""
        return self._problem(err, {"Connection": "close"})

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        # Checked before anything is buffered, so a refusal can still be sent instead.
        if not 100 <= status <= 599:
            raise ValueError(f"status {status} is not an HTTP status")
        lines = {str(key): str(value) for key, value in headers.items()}
        for key, value in lines.items():
            (key + value).encode("latin-1")  # what send_header does, raising UnicodeEncodeError
            if _CONTROL.search(key + value):  # CR/LF would let a handler's value split the response
                raise ValueError(f"header {key!r} holds control characters")
        self.send_response(status)
        for key, value in lines.items():
            self.send_header(key, value)
        if "content-type" not in {k.lower() for k in lines} and payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        # A request line refused by http.server leaves no command; its first word still tells HEAD.
        if (self.command or self.requestline.partition(" ")[0]) != "HEAD":
            self.wfile.write(payload)


class LocalGateway(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    # Seconds a connection may wait for the client's next bytes (a request, the rest of
    # its headers or body): a client that stops sending must not hold a thread forever.
    read_timeout: float = 30.0

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3000,
        authorizer: Authorizer = default_authorizer,
        *,
        reuse_port: bool = False,
        read_timeout: float | None = None,
    ):
        self.allow_reuse_port = reuse_port  # several worker processes on one port
        super().__init__((host, port), _Handler)
        self.authorizer = authorizer
        if read_timeout is not None:
            self.read_timeout = read_timeout
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> LocalGateway:
        """Serve on a background thread (tests, ``dev up``)."""
        preload()
        self._thread = threading.Thread(target=self.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)


class GatewayProcesses:
    """Several gateway processes on one port (SO_REUSEPORT; the kernel spreads the
    connections): like Lambda, where instances do not share an interpreter, so the
    local stack is not bounded by one process's GIL. Each dies with its parent."""

    def __init__(self, workers: int, port: int, log_dir: Path, host: str = "127.0.0.1") -> None:
        from ledgerline.local import lifeline

        self.host, self.port = host, port
        self._logs = [log_dir / f"gateway-{i}.log" for i in range(workers)]
        self._procs = [
            lifeline.spawn(
                ["-m", "ledgerline.local.gateway", "serve", "--host", host, "--port", str(port)], log_file=log
            )
            for log in self._logs
        ]
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc, log in zip(self._procs, self._logs, strict=True):
                if proc.poll() is not None:
                    raise RuntimeError(f"gateway worker exited: {log.read_text(errors='replace')[-2000:]}")
            if all(log.exists() and _READY in log.read_text(errors="replace") for log in self._logs):
                return
            time.sleep(0.1)
        raise RuntimeError(f"gateway workers not ready after {timeout:.0f} s (logs: {self._logs[0].parent})")

    def stop(self) -> None:
        from ledgerline.local import lifeline

        for proc in self._procs:
            lifeline.stop(proc)


_READY = "gateway worker serving"


def _main(argv: list[str] | None = None) -> None:
    import argparse

    from ledgerline.local import lifeline
    from ledgerline.local.stack import configure_logging

    parser = argparse.ArgumentParser(prog="python -m ledgerline.local.gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve until the parent process is gone")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    lifeline.tie_to_parent(args.parent_pid)
    configure_logging(logging.WARNING)
    gateway = LocalGateway(args.host, args.port, reuse_port=True)
    preload()
    print(f"{_READY} on {gateway.url} (pid {os.getpid()})", flush=True)
    gateway.serve_forever()


if __name__ == "__main__":
    _main()
