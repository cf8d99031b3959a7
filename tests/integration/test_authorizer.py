"""The Lambda authorizer against the real PostgreSQL and the KMS stand-in, and real
route handlers invoked with the event API Gateway builds behind it (payload 2.0, the
authorizer's context under ``requestContext.authorizer.lambda``)."""

from __future__ import annotations

import importlib
import json
import time
import uuid
from typing import Any

import pytest

from functions.auth import authorizer as lambda_authorizer
from ledgerline.audit import Actor
from ledgerline.auth import apikeys, sessions, tokens, users
from ledgerline.auth.model import NewApiKey, User
from ledgerline.caller import Principal
from ledgerline.db import transaction
from ledgerline.local.gateway import LambdaContext, build_event

pytestmark = pytest.mark.usefixtures("database_url", "aws_endpoint")

SYSTEM = Actor.system("tests")


def new_user(role: str) -> User:
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.test"
    return transaction(
        lambda cur: users.create_user(
            cur, email=email, password="correct horse battery staple 9", full_name="T", role=role, actor=SYSTEM
        )
    )


def new_key(merchant: User, scopes: list[str]) -> NewApiKey:
    me = Principal(id=merchant.id, role="merchant")
    actor = Actor(id=merchant.id, type="merchant")
    return transaction(lambda cur: apikeys.create(cur, me, name="server", scopes=scopes, actor=actor))


def authorize(authorization: str) -> dict[str, Any]:
    event = {
        "version": "2.0",
        "type": "REQUEST",
        "routeKey": "GET /v1/accounts",
        "headers": {"authorization": authorization},
        "requestContext": {"http": {"method": "GET", "path": "/v1/accounts", "sourceIp": "192.0.2.44"}},
    }
    response = lambda_authorizer.handler(event, LambdaContext("authorizer", "r"))
    return json.loads(json.dumps(response))  # as API Gateway reads it


def call_route(module: str, method: str, path: str, context: dict[str, Any]) -> tuple[int, Any]:
    """Invoke a route's handler as API Gateway does behind the Lambda authorizer."""
    mod = importlib.import_module(module)
    event = build_event(
        method=method, raw_path=path, raw_query="", headers={}, body=b"", source_ip="192.0.2.44",
        route=mod.api.route, path_parameters={}, claims=None, request_id=str(uuid.uuid4()),
    )  # fmt: skip
    event["requestContext"]["authorizer"] = {"lambda": context}
    result = mod.handler(event, LambdaContext(module, "r"))
    return result["statusCode"], json.loads(result["body"] or "null")


def test_a_valid_api_key_is_allowed_with_api_key_claims_and_reaches_its_routes():
    merchant = new_user("merchant")
    created = new_key(merchant, ["accounts:read"])

    response = authorize(f"Bearer {created.key}")

    assert response["isAuthorized"] is True
    context = response["context"]
    assert context["typ"] == "api_key" and context["sub"] == str(merchant.id)
    assert context["api_key_id"] == str(created.id) and context["scope"] == "accounts:read"
    assert call_route("functions.ledger.accounts_list", "GET", "/v1/accounts", context)[0] == 200


def test_a_revoked_api_key_is_denied_and_a_cached_allow_stops_at_the_endpoint():
    merchant = new_user("merchant")
    created = new_key(merchant, ["accounts:read"])
    cached = authorize(f"Bearer {created.key}")["context"]
    me = Principal(id=merchant.id, role="merchant")

    transaction(lambda cur: apikeys.revoke(cur, me, created.id, Actor(id=merchant.id, type="merchant")))

    assert authorize(f"Bearer {created.key}") == {"isAuthorized": False}
    status, body = call_route("functions.ledger.accounts_list", "GET", "/v1/accounts", cached)
    assert (status, body["code"]) == (401, "unauthorized")


def test_a_made_up_api_key_is_denied():
    assert authorize("Bearer llk_deadbeef_" + "x" * 43) == {"isAuthorized": False}


def test_a_session_token_is_allowed_and_the_route_sees_its_user():
    user = new_user("user")
    started = transaction(lambda cur: sessions.start(cur, user.id, "user", sessions.Client(), amr=["pwd"]))

    response = authorize(f"Bearer {started.access_token}")

    assert response["isAuthorized"] is True and response["context"]["typ"] == "access"
    status, body = call_route("functions.auth.me", "GET", "/v1/me", response["context"])
    assert status == 200 and body["id"] == str(user.id)


def test_a_cached_allow_ends_with_the_tokens_exp_and_with_its_session():
    user = new_user("user")
    session_id, _ = transaction(lambda cur: sessions.create_session(cur, user.id, sessions.Client(), amr=["pwd"]))
    issued = time.time() - tokens.ACCESS_TOKEN_TTL - 60
    old, _ = tokens.issue_access_token(user.id, "user", session_id=session_id, now=issued)
    cached = tokens.verify_access_token(old, now=issued + 60)  # allowed then, cached by API Gateway

    status, body = call_route("functions.auth.me", "GET", "/v1/me", cached)
    assert (status, body["code"]) == (401, "unauthorized") and "expired" in body["detail"]

    fresh, _ = tokens.issue_access_token(user.id, "user", session_id=session_id)
    context = authorize(f"Bearer {fresh}")["context"]
    assert call_route("functions.auth.me", "GET", "/v1/me", context)[0] == 200
    transaction(lambda cur: sessions.revoke_all(cur, user.id, reason="test"))
    assert call_route("functions.auth.me", "GET", "/v1/me", context)[0] == 401
