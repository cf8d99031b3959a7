"""The Lambda authorizer's contract with API Gateway (HTTP API, payload 2.0, simple
responses), and the Endpoint reading its context. No database: tokens are signed with an
in-memory keyring; API keys against the database are in tests/integration."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
import pytest

from functions.auth import authorizer as lambda_authorizer
from ledgerline import errors, routes
from ledgerline.auth import apikeys, failures, keys, tokens
from ledgerline.auth import authorizer as decision
from ledgerline.http import Endpoint, json_response
from ledgerline.http import endpoint as endpoint_module
from ledgerline.local.gateway import LambdaContext, build_event
from tests.unit.edge import trust_claims

ROUTE = routes.Route("GET", "/v1/authorizer-probe", "tests.unit.test_authorizer", routes.Access.USER, "probe")


@pytest.fixture
def ring():
    ring = keys.LocalKeyring.generate(1)
    previous = keys.use_keyring(ring)
    yield ring
    keys.use_keyring(previous)


def authorizer_event(authorization: str | None, *, ip: str = "203.0.113.9", header: str = "authorization") -> dict:
    """What API Gateway sends a REQUEST authorizer with payload format 2.0."""
    headers = {"host": "abc123.execute-api.eu-west-1.amazonaws.com", "user-agent": "pytest"}
    if authorization is not None:
        headers[header] = authorization
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:eu-west-1:123456789012:abc123/$default/GET/v1/accounts",
        "identitySource": [authorization] if authorization else [],
        "routeKey": "GET /v1/accounts",
        "rawPath": "/v1/accounts",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "http": {"method": "GET", "path": "/v1/accounts", "sourceIp": ip, "userAgent": "pytest"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "GET /v1/accounts",
            "stage": "$default",
        },
    }


def authorize(authorization: str | None, **kw: Any) -> dict[str, Any]:
    response = lambda_authorizer.handler(authorizer_event(authorization, **kw), LambdaContext("authorizer", "r"))
    # API Gateway reads the response as JSON: it must survive the trip unchanged.
    assert json.loads(json.dumps(response)) == response
    return response


def access_token(**over: Any) -> str:
    token, _ = tokens.issue_access_token(uuid.uuid4(), "merchant", session_id=uuid.uuid4(), **over)
    return token


# -- the decision -----------------------------------------------------------------------------


def test_a_valid_access_token_is_allowed_with_its_verified_claims_as_the_context(ring):
    token = access_token()

    response = authorize(f"Bearer {token}")

    assert response == {"isAuthorized": True, "context": tokens.verify_access_token(token)}
    assert response["context"]["typ"] == "access" and isinstance(response["context"]["exp"], int)


def test_the_scheme_is_case_insensitive_and_the_header_name_too(ring):
    assert authorize(f"bearer {access_token()}", header="Authorization")["isAuthorized"] is True


def test_an_expired_token_is_denied(ring):
    token = access_token(now=time.time() - tokens.ACCESS_TOKEN_TTL - 60)

    assert authorize(f"Bearer {token}") == {"isAuthorized": False}


def test_a_token_signed_by_another_key_is_denied(ring):
    stranger = keys.LocalKeyring.generate(1)
    claims = jwt.decode(access_token(), options={"verify_signature": False})
    forged = jwt.encode(
        claims, stranger.private_key(0), algorithm="RS256", headers={"typ": "at+jwt", "kid": ring.signing_key().kid}
    )

    assert authorize(f"Bearer {forged}") == {"isAuthorized": False}


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_alg_none_and_hmac_tokens_are_denied(ring, alg):
    claims = jwt.decode(access_token(), options={"verify_signature": False})
    header = {"alg": alg, "typ": "at+jwt", "kid": ring.signing_key().kid}
    segments = [keys.b64url(json.dumps(part).encode()) for part in (header, claims)]
    unsigned = ".".join(segments) + "."

    assert authorize(f"Bearer {unsigned}") == {"isAuthorized": False}
    assert authorize(f"Bearer {unsigned}c2lnbmF0dXJl") == {"isAuthorized": False}


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc", "llk_deadbeef_xyz", "Bearer not-a-jwt"]
)
def test_a_malformed_authorization_header_is_denied(ring, header):
    assert authorize(header) == {"isAuthorized": False}


def test_api_keys_go_to_the_key_check_and_come_back_as_api_key_claims(ring, monkeypatch):
    checked = []
    claims = {"typ": apikeys.TYP, "sub": str(uuid.uuid4()), "role": "merchant", "api_key_id": str(uuid.uuid4()),
              "scope": "accounts:read"}  # fmt: skip
    monkeypatch.setattr(apikeys, "authorize", lambda key: checked.append(key) or claims)

    response = authorize("Bearer llk_0a1b2c3d_secret")

    assert checked == ["llk_0a1b2c3d_secret"]
    assert response == {"isAuthorized": True, "context": claims}


def test_a_refused_api_key_is_denied(ring, monkeypatch):
    def refuse(key: str) -> dict[str, Any]:
        raise errors.Unauthorized("the API key is not valid or was revoked")

    monkeypatch.setattr(apikeys, "authorize", refuse)

    assert authorize("Bearer llk_0a1b2c3d_revoked") == {"isAuthorized": False}


def test_the_api_key_prefix_is_the_one_keys_are_made_with():
    assert decision.API_KEY_PREFIX == apikeys.KEY_PREFIX


def test_an_ip_over_its_failure_budget_is_denied_before_any_credential_is_checked(ring, monkeypatch):
    ip = "198.51.100.77"
    monkeypatch.setitem(failures._blocked, ip, time.monotonic() + 60)
    checked: list[str] = []

    with pytest.raises(errors.DomainError) as refused:
        decision.authorize_bearer(f"Bearer {access_token()}", ip, verify=lambda c: checked.append(c) or {})

    assert refused.value.status == 429 and checked == []
    assert authorize(f"Bearer {access_token()}", ip=ip) == {"isAuthorized": False}


class _BrokenKeyring:
    """KMS unreachable: every key lookup fails."""

    def verification_key(self, kid: str) -> keys.PublicKey | None:
        raise RuntimeError("could not connect to the endpoint URL: kms")


def test_a_failure_of_the_authorizer_itself_is_raised_never_allowed(ring, monkeypatch):
    token = access_token()
    monkeypatch.setattr(keys, "keyring", lambda: _BrokenKeyring())

    # Raised: API Gateway answers 500 and runs no route; a refusal would be cached (5 min)
    # against a good token, an error is not.
    with pytest.raises(RuntimeError, match="kms"):
        lambda_authorizer.handler(authorizer_event(f"Bearer {token}"), LambdaContext("authorizer", "r"))


def test_a_failing_api_key_lookup_is_raised_never_allowed(monkeypatch):
    def database_down(key: str) -> dict[str, Any]:
        raise ConnectionError("the proxy is unreachable")

    monkeypatch.setattr(apikeys, "authorize", database_down)

    with pytest.raises(ConnectionError):
        lambda_authorizer.handler(authorizer_event("Bearer llk_0a1b2c3d_x"), LambdaContext("authorizer", "r"))


# -- the Endpoint behind it ---------------------------------------------------------------------


@pytest.fixture
def endpoint(monkeypatch):
    """A USER route whose principal comes from the claims alone (the database check of
    the principal is covered by tests/integration/test_authorizer.py)."""
    monkeypatch.setattr(routes, "ROUTES", (*routes.ROUTES, ROUTE))
    api = Endpoint("tests.unit.test_authorizer", admit=trust_claims)
    api(lambda: json_response({"sub": str(api.request.require_principal().id)}))
    return api


def route_event(context: dict[str, Any] | None) -> dict[str, Any]:
    """The route's event as API Gateway builds it behind a Lambda authorizer (payload 2.0):
    the authorizer's context under ``requestContext.authorizer.lambda``."""
    event = build_event(
        method="GET", raw_path=ROUTE.path, raw_query="", headers={}, body=b"", source_ip="203.0.113.9",
        route=ROUTE, path_parameters={}, claims=None, request_id=str(uuid.uuid4()),
    )  # fmt: skip
    if context is not None:
        event["requestContext"]["authorizer"] = {"lambda": context}
    return event


def call(api: Endpoint, context: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    result = api.handler(route_event(context), LambdaContext("probe", "r"))
    return result["statusCode"], json.loads(result["body"])


def test_the_endpoint_takes_the_caller_from_the_lambda_authorizers_context(ring, endpoint):
    allowed = authorize(f"Bearer {access_token()}")

    status, body = call(endpoint, allowed["context"])

    assert status == 200 and body == {"sub": allowed["context"]["sub"]}


def test_a_token_that_expired_while_its_allow_was_cached_is_refused(ring, endpoint):
    issued = time.time() - tokens.ACCESS_TOKEN_TTL - 60
    token = access_token(now=issued)
    # What the authorizer answered (and API Gateway cached) while the token was young.
    cached = tokens.verify_access_token(token, now=issued + 60)
    assert authorize(f"Bearer {token}") == {"isAuthorized": False}, "asked now, the authorizer refuses it"

    status, body = call(endpoint, cached)

    assert (status, body["code"]) == (401, "unauthorized") and "expired" in body["detail"]


@pytest.mark.parametrize("exp", [None, "soon", float("nan"), float("inf")])
def test_access_claims_without_a_usable_exp_are_refused(endpoint, exp):
    claims = {"typ": "access", "sub": str(uuid.uuid4()), "role": "user", "exp": exp}

    assert call(endpoint, {k: v for k, v in claims.items() if v is not None})[0] == 401


def test_api_key_claims_have_no_exp_and_pass_to_the_database_check(endpoint):
    claims = {"typ": "api_key", "sub": str(uuid.uuid4()), "role": "merchant", "api_key_id": str(uuid.uuid4())}

    assert call(endpoint, claims)[0] == 200


def test_no_authorizer_context_is_401(endpoint):
    assert call(endpoint, None)[0] == 401


def test_the_local_gateways_jwt_shape_still_works_and_is_checked_the_same_way():
    live = {"typ": "access", "sub": "s", "exp": int(time.time()) + 60}
    expired = {**live, "exp": int(time.time()) - 60}

    assert endpoint_module.authorizer_claims({"authorizer": {"jwt": {"claims": live}}}) == live
    with pytest.raises(errors.Unauthorized, match="expired"):
        endpoint_module.authorizer_claims({"authorizer": {"jwt": {"claims": expired}}})


def test_the_endpoint_allows_the_same_clock_skew_as_token_verification():
    assert endpoint_module.EXPIRY_LEEWAY_SECONDS == tokens.LEEWAY_SECONDS
    within = {"typ": "access", "exp": int(time.time()) - tokens.LEEWAY_SECONDS + 2}

    assert endpoint_module.authorizer_claims({"authorizer": {"lambda": within}}) == within
