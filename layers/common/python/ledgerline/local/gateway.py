"""A local stand-in for API Gateway (HTTP API, payload format 2.0).

Each request is matched against the route table, turned into the same event API Gateway
would send (JWT authorizer claims included), and handed to the route's Lambda handler
in-process with a Lambda-like context. Requests are served on a thread each, so the
handlers see real concurrency.
"""

from __future__ import annotations

import base64
import importlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ledgerline import errors, jsonutil, routes
from ledgerline.http.endpoint import PROBLEM_JSON

logger = logging.getLogger("ledgerline.gateway")

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024  # API Gateway refuses larger payloads itself
_TEXT_TYPES = ("application/json", "application/problem+json", "application/x-www-form-urlencoded", "text/")

Authorizer = Callable[[str], dict[str, Any]]


API_KEY_PREFIX = "llk_"


def default_authorizer(token: str) -> dict[str, Any]:
    """Verify a bearer credential the way the deployed authorizers do: merchant API keys
    (``llk_...``) against their stored hashes, anything else as an RS256 access token."""
    if token.startswith(API_KEY_PREFIX):
        from ledgerline.auth.apikeys import authorize

        return authorize(token)
    from ledgerline.auth.tokens import verify_access_token

    return verify_access_token(token)


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


class _Handler(BaseHTTPRequestHandler):
    server: LocalGateway
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.client_address[0], *args)

    def _dispatch(self) -> None:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        status = self._serve(request_id)
        logger.info("%s %s %s %.1fms", self.command, self.path, status, (time.perf_counter() - started) * 1000)

    def _serve(self, request_id: str) -> int:
        parts = urlsplit(self.path)
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            k = key.lower()
            headers[k] = f"{headers[k]},{value}" if k in headers else value
        length = int(headers.get("content-length") or 0)
        if length > API_GATEWAY_MAX_BODY:
            self.close_connection = True
            return self._problem(errors.PayloadTooLarge(f"the request body is over {API_GATEWAY_MAX_BODY} bytes"))
        body = self.rfile.read(length) if length else b""
        route, params, allowed = routes.match(self.command, parts.path)
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
        return self._write_result(result)

    def _authorize(self, headers: dict[str, str]) -> dict[str, Any]:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.Unauthorized("send a valid access token: Authorization: Bearer <token>")
        return self.server.authorizer(token.strip())

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
        self._send(err.status, jsonutil.dumps(err.problem()).encode(), headers)
        return err.status

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        lower = {k.lower() for k in headers}
        for key, value in headers.items():
            self.send_header(key, str(value))
        if "content-type" not in lower and payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Date", formatdate(usegmt=True))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class LocalGateway(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3000,
        authorizer: Authorizer = default_authorizer,
        *,
        reuse_port: bool = False,
    ):
        self.allow_reuse_port = reuse_port  # several worker processes on one port
        super().__init__((host, port), _Handler)
        self.authorizer = authorizer
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

    parser = argparse.ArgumentParser(prog="python -m ledgerline.local.gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve until the parent process is gone")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    lifeline.tie_to_parent(args.parent_pid)
    logging.basicConfig(level=logging.WARNING)
    gateway = LocalGateway(args.host, args.port, reuse_port=True)
    preload()
    print(f"{_READY} on {gateway.url} (pid {os.getpid()})", flush=True)
    gateway.serve_forever()


if __name__ == "__main__":
    _main()
