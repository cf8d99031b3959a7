"""The local API Gateway emulator, over real HTTP."""

import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import requests


def test_health_says_the_database_is_up(client):
    r = client.get("/v1/health")

    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["schema_version"] >= 2


def test_an_unknown_route_is_a_404_problem(client):
    r = client.get("/v1/no-such-thing")

    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["code"] == "not_found"


def test_a_known_path_with_the_wrong_method_is_a_405_with_allow(client):
    r = client.delete("/v1/health")

    assert r.status_code == 405
    assert r.headers["Allow"] == "GET"
    assert r.json()["code"] == "method_not_allowed"


def test_the_openapi_document_lists_every_route_in_the_table(client):
    from ledgerline import routes

    doc = client.get("/v1/openapi.json").json()

    assert doc["openapi"].startswith("3.")
    for route in routes.ROUTES:
        assert route.method.lower() in doc["paths"][route.path], route


def test_protected_routes_need_a_bearer_token(client):
    from ledgerline import routes

    protected = next((r for r in routes.ROUTES if not r.public and "{" not in r.path), None)
    if protected is None:
        return  # nothing protected in the table yet
    r = client.request(protected.method, protected.path, json={})

    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"


def test_sixteen_concurrent_requests_are_served_at_once(api):
    def health(_):
        return requests.get(f"{api}/v1/health", timeout=30).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(health, range(64)))

    assert statuses == [200] * 64


def _logged(read, needle: str, timeout: float = 5.0) -> str:
    """The first log line holding ``needle``: the access line is written after the
    response has gone out, so it may come a moment after the client has its answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = next((line for line in read() if needle in line), None)
        if line is not None:
            return line
        time.sleep(0.02)
    raise AssertionError(f"no log line with {needle!r} in {read()}")


def test_the_access_log_masks_query_values(client, caplog):
    caplog.set_level(logging.INFO, logger="ledgerline.gateway")

    client.get("/v1/health?email=someone@example.com&access%5Ftoken=s3cr3tvalue&phone=08031234567&page=2")

    line = _logged(lambda: [r.getMessage() for r in caplog.records if r.name == "ledgerline.gateway"], "/v1/health")
    for leaked in ("someone", "s3cr3tvalue", "08031234567"):
        assert leaked not in line, line
    assert "email=s****@example.com" in line
    assert "access_token=****" in line and "phone=****4567" in line and "page=2" in line


def test_the_access_log_escapes_control_characters_in_the_path(client, caplog):
    caplog.set_level(logging.INFO, logger="ledgerline.gateway")

    client.get("/v1/health?note=%1b[31mred%0aFAKE LINE")

    line = _logged(lambda: [r.getMessage() for r in caplog.records if r.name == "ledgerline.gateway"], "note=")
    assert "\x1b" not in line and "\n" not in line, repr(line)  # no terminal escapes, no forged lines
    assert r"\x1b[31mred\x0aFAKE LINE" in line


def test_the_local_stack_logs_through_the_masking_filter(client, caplog):
    from ledgerline.local.stack import configure_logging

    caplog.set_level(logging.INFO, logger="ledgerline")  # the tests run the service logger at WARNING

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers.clear()  # as in a fresh `ledgerline dev up` process, where basicConfig acts
    stream = io.StringIO()
    try:
        configure_logging(stream=stream)
        client.get("/v1/health?email=someone@example.com")
        logging.getLogger("ledgerline.scheduler").info("reminder sent to email=%s", "ada@example.com")
        logging.getLogger("ledgerline.gateway").info("GET %s 200 1.0ms", "/v1/health?email=grace@example.com")
        _logged(lambda: stream.getvalue().splitlines(), "/v1/health?email=s")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    output = stream.getvalue()
    for leaked in ("someone@", "ada@", "grace@"):
        assert leaked not in output, output
    assert "email=s****@example.com" in output
    assert "email=a****@example.com" in output and "email=g****@example.com" in output
