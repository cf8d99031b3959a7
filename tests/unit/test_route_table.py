"""The route table is the single source of truth: every row has a real handler."""

import importlib

import pytest

from ledgerline import routes


@pytest.mark.parametrize("route", routes.ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_route_has_a_handler_module_bound_to_that_row(route):
    module = importlib.import_module(route.handler)

    assert callable(module.handler)
    assert module.api.route == route


def test_no_two_routes_share_method_and_path():
    keys = [(r.method, r.path) for r in routes.ROUTES]

    assert len(keys) == len(set(keys))


def test_no_two_routes_share_a_handler_or_name():
    assert len({r.handler for r in routes.ROUTES}) == len(routes.ROUTES)
    assert len({r.name for r in routes.ROUTES}) == len(routes.ROUTES)


def test_grants_are_from_the_vocabulary():
    for route in routes.ROUTES:
        assert set(route.grants) <= set(routes.GRANTS), route


def test_match_tells_unknown_path_from_wrong_method():
    route, params, allowed = routes.match("GET", "/v1/health")
    assert route and route.handler == "functions.system.health" and params == {}

    route, _, allowed = routes.match("DELETE", "/v1/health")
    assert route is None and allowed == ["GET"]

    route, _, allowed = routes.match("GET", "/v1/nope")
    assert route is None and allowed == []


def test_path_parameters_are_extracted(monkeypatch):
    extra = routes.Route("GET", "/v1/things/{id}/parts/{part_id}", "functions.x.y", routes.Access.USER, "t")
    monkeypatch.setattr(routes, "ROUTES", (*routes.ROUTES, extra))
    routes._compiled.cache_clear()
    try:
        route, params, _ = routes.match("GET", "/v1/things/abc/parts/42")
    finally:
        routes._compiled.cache_clear()

    assert route == extra
    assert params == {"id": "abc", "part_id": "42"}


def test_every_function_module_is_wired_to_a_route_a_schedule_or_a_queue():
    """A handler that no table names never runs (the auth purge job once sat unscheduled)."""
    from pathlib import Path

    from ledgerline.jobs import QUEUES, SCHEDULES

    root = Path(__file__).resolve().parents[2]
    modules = {
        ".".join(p.relative_to(root).with_suffix("").parts)
        for p in (root / "functions").glob("*/*.py")
        if p.name != "__init__.py"
    }
    wired = (
        {r.handler for r in routes.ROUTES}
        | {s.handler for s in SCHEDULES}
        | {q.consumer for q in QUEUES}
        | {"functions.system.migrate"}  # the CloudFormation custom resource (infra/components/migration.py)
        | {"functions.auth.authorizer"}  # the API's Lambda authorizer (infra/components/http_api.py)
    )

    assert modules - wired == set()
