"""The local API Gateway emulator, over real HTTP."""

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
