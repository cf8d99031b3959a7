"""Merchant API keys in AWS (issue 18): every route that accepts a key (``key_scope`` in
the route table) sits behind the generated Lambda REQUEST authorizer, whose answer API
Gateway caches briefly per credential; and a real ``llk_`` key gets through what the
template wires, invoked as API Gateway invokes it, against the real database.

What the template names is what runs here: the authorizer's handler and the route's
handler are imported from the synthesized ``Handler`` properties, and the event carries
the credential in the header the authorizer's ``IdentitySource`` names.
"""

from __future__ import annotations

import importlib
import json
import uuid
from typing import Any

import pytest

from infra import constants as c
from ledgerline.routes import Route
from tests.infra.conftest import Synthesized
from tests.infra.helpers import from_parent, ref, route_targets

API = c.API_STACK
MAX_CACHE_SECONDS = 300  # "short": a key's allow outlives nothing (the Endpoint re-checks it)


def key_routes(app: Synthesized) -> dict[str, Route]:
    return {f"{r.method} {r.path}": r for r in app.tables.routes if r.key_scope}


def authorizer_of(app: Synthesized, route: dict[str, Any]) -> dict[str, Any]:
    """The properties of the authorizer a route resource names (in the API's stack)."""
    authorizers = app.resources(API, "AWS::ApiGatewayV2::Authorizer")
    return dict(authorizers[ref(from_parent(app, API, route["AuthorizerId"]))]["Properties"])


def authorizer_handler(app: Synthesized, authorizer: dict[str, Any]) -> str:
    """The ``Handler`` of the function the authorizer's invocation URI names."""
    functions = app.resources(API, "AWS::Lambda::Function")
    [target] = [ref(part) for part in authorizer["AuthorizerUri"]["Fn::Join"][1] if ref(part) in functions]
    return str(functions[target]["Properties"]["Handler"])


def load(handler: str) -> Any:
    module, _, name = handler.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_every_route_that_accepts_api_keys_is_behind_the_request_authorizer_with_a_short_cache(
    synthesized: Synthesized,
) -> None:
    accepting = key_routes(synthesized)
    targets = route_targets(synthesized, API)
    assert accepting, "the route table has no route that accepts API keys"
    for key in accepting:
        route, _ = targets[key]
        assert route["AuthorizationType"] == "CUSTOM", key
        authorizer = authorizer_of(synthesized, route)
        assert authorizer["AuthorizerType"] == "REQUEST", key
        assert "JwtConfiguration" not in authorizer, key  # a JWT authorizer refuses llk_ keys
        assert authorizer_handler(synthesized, authorizer) == "functions.auth.authorizer.handler", key
        # Cached per credential (the Authorization header is the cache key) and briefly.
        assert authorizer["IdentitySource"] == ["$request.header.Authorization"], key
        assert 0 < authorizer["AuthorizerResultTtlInSeconds"] <= MAX_CACHE_SECONDS, key


@pytest.fixture
def merchant_key(database_url: str, aws_endpoint: str) -> Any:
    """A merchant with a wallet and a key that may read accounts (not write them)."""
    from ledgerline.audit import Actor
    from ledgerline.auth import apikeys, users
    from ledgerline.caller import Principal
    from ledgerline.db import transaction
    from ledgerline.ledger.testing import new_wallet

    merchant = transaction(
        lambda cur: users.create_user(
            cur,
            email=f"merchant-{uuid.uuid4().hex[:10]}@example.test",
            password="correct horse battery staple 9",
            full_name="M",
            role="merchant",
            actor=Actor.system("tests"),
        )
    )
    account_id = new_wallet("NGN", owner_id=merchant.id).id
    me, actor = Principal(id=merchant.id, role="merchant"), Actor(id=merchant.id, type="merchant")
    key = transaction(lambda cur: apikeys.create(cur, me, name="server", scopes=["accounts:read"], actor=actor))
    return {"merchant": merchant, "account_id": account_id, "key": key.key}


def request_event(authorizer: dict[str, Any], route_key: str, credential: str) -> dict[str, Any]:
    """API Gateway's payload 2.0 REQUEST event for the authorizer, the credential in the
    header its identity source names."""
    [source] = authorizer["IdentitySource"]
    header = source.removeprefix("$request.header.").lower()
    method, path = route_key.split(" ", 1)
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:eu-west-1:123456789012:api/$default/{method}{path}",
        "identitySource": [credential],
        "routeKey": route_key,
        "rawPath": path,
        "headers": {header: credential},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "192.0.2.80"},
            "routeKey": route_key,
        },
    }


def invoke_route(handler: str, route: Route, context: dict[str, Any]) -> tuple[int, Any]:
    """The route's function as API Gateway invokes it behind the authorizer."""
    from ledgerline.local.gateway import LambdaContext, build_event

    event = build_event(
        method=route.method, raw_path=route.path, raw_query="", headers={}, body=b"", source_ip="192.0.2.80",
        route=route, path_parameters={}, claims=None, request_id=str(uuid.uuid4()),
    )  # fmt: skip
    event["requestContext"]["authorizer"] = {"lambda": context}
    result = load(handler)(event, LambdaContext(handler, "r"))
    return result["statusCode"], json.loads(result["body"] or "null")


def test_an_api_key_works_through_the_generated_authorizer_and_route(real: Synthesized, merchant_key: Any) -> None:
    from ledgerline.local.gateway import LambdaContext

    targets = route_targets(real, API)
    route_row = key_routes(real)["GET /v1/accounts"]
    route, function = targets["GET /v1/accounts"]
    authorizer = authorizer_of(real, route)
    authorize = load(authorizer_handler(real, authorizer))

    answer = authorize(
        request_event(authorizer, "GET /v1/accounts", f"Bearer {merchant_key['key']}"),
        LambdaContext("authorizer", "r"),
    )
    answer = json.loads(json.dumps(answer))  # as API Gateway reads it

    assert answer["isAuthorized"] is True
    assert answer["context"]["typ"] == "api_key" and answer["context"]["sub"] == str(merchant_key["merchant"].id)
    status, body = invoke_route(function["Handler"], route_row, answer["context"])
    assert status == 200, body
    assert [a["id"] for a in body["items"]] == [str(merchant_key["account_id"])]
    # The cached allow is per credential, not per route: a route outside the key's scopes
    # refuses it behind the same answer.
    write_row = key_routes(real)["POST /v1/accounts"]
    status, body = invoke_route(targets["POST /v1/accounts"][1]["Handler"], write_row, answer["context"])
    assert status == 403 and body["code"] == "forbidden", body


def test_a_made_up_api_key_is_refused_by_the_generated_authorizer(real: Synthesized, database_url: str) -> None:
    from ledgerline.local.gateway import LambdaContext

    route, _ = route_targets(real, API)["GET /v1/accounts"]
    authorizer = authorizer_of(real, route)
    authorize = load(authorizer_handler(real, authorizer))

    answer = authorize(
        request_event(authorizer, "GET /v1/accounts", "Bearer llk_deadbeef_" + "x" * 43),
        LambdaContext("authorizer", "r"),
    )

    assert answer == {"isAuthorized": False}
