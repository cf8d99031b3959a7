"""Every route shares one edge: body limit, validation, Decimal JSON, problem+json."""

import base64
import json
import uuid
from decimal import Decimal

import pytest
from pydantic import BaseModel, ConfigDict, StrictStr

from ledgerline import errors, money, routes
from ledgerline.http import Endpoint, json_response
from ledgerline.local.gateway import LambdaContext, build_event
from tests.unit.edge import trust_claims

ROUTE = routes.Route("POST", "/v1/samples/{id}", "tests.unit.test_endpoint", routes.Access.PUBLIC, "sample")
ADMIN_ROUTE = routes.Route("GET", "/v1/admin/samples", "tests.unit.test_endpoint.admin", routes.Access.ADMIN, "admin")


class SampleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: StrictStr
    currency: StrictStr


@pytest.fixture
def endpoint(monkeypatch):
    monkeypatch.setattr(routes, "ROUTES", (*routes.ROUTES, ROUTE, ADMIN_ROUTE))
    api = Endpoint("tests.unit.test_endpoint", admit=trust_claims)

    @api
    def create_sample(id: str, body: SampleBody):
        if id == "boom":
            raise RuntimeError("secret internals: password=hunter2")
        if id == "refuse":
            raise errors.InsufficientFunds("the account holds 5.00 NGN; 10.00 NGN is needed")
        amount = money.parse_amount(body.amount, money.check_currency(body.currency))
        return json_response({"id": id, "amount": amount, "is_decimal": isinstance(amount, Decimal)}, 201)

    return api


def call(api, body, *, path="/v1/samples/abc", claims=None, raw=False, b64=False):
    payload = body if raw else json.dumps(body).encode()
    event = build_event(
        method="POST", raw_path=path, raw_query="", headers={"content-type": "application/json"},
        body=payload, source_ip="127.0.0.1", route=api.route,
        path_parameters={"id": path.rsplit("/", 1)[1]}, claims=claims, request_id=str(uuid.uuid4()),
    )  # fmt: skip
    if b64:
        event["body"] = base64.b64encode(payload).decode()
        event["isBase64Encoded"] = True
    result = api.handler(event, LambdaContext("sample", "r"))
    return result["statusCode"], result["headers"].get("Content-Type"), json.loads(result["body"])


def test_a_valid_request_reaches_the_route_with_an_exact_decimal(endpoint):
    status, ctype, body = call(endpoint, {"amount": "10.50", "currency": "NGN"})

    assert (status, ctype) == (201, "application/json")
    assert body == {"id": "abc", "amount": "10.50", "is_decimal": True}


def test_bad_json_is_a_400_problem(endpoint):
    status, ctype, body = call(endpoint, b'{"amount": "1",', raw=True)

    assert (status, ctype) == (400, "application/problem+json")
    assert body["code"] == "bad_request"
    assert set(body) >= {"type", "title", "status", "detail", "code"}


def test_an_amount_sent_as_a_json_number_is_refused(endpoint):
    status, _, body = call(endpoint, {"amount": 10.5, "currency": "NGN"})

    assert status == 422
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == "amount"


@pytest.mark.parametrize("amount", ["0", "-5", "1e3", "NaN", "Infinity", " 10", "10.001", "1" * 16])
def test_malformed_amounts_are_refused_with_the_field_named(endpoint, amount):
    status, _, body = call(endpoint, {"amount": amount, "currency": "NGN"})

    assert status == 422
    assert body["errors"] == [{"field": "amount", "message": body["errors"][0]["message"]}]


def test_more_decimals_than_the_currency_allows_says_so(endpoint):
    _, _, body = call(endpoint, {"amount": "1.5", "currency": "JPY"})

    assert body["errors"][0]["message"] == "amount has 1 decimal places; JPY allows 0"


def test_unknown_fields_are_refused(endpoint):
    status, _, body = call(endpoint, {"amount": "1.00", "currency": "NGN", "memo": "x"})

    assert status == 422
    assert body["errors"] == [{"field": "memo", "message": "unknown field; remove it"}]


def test_a_body_over_64_kb_is_a_413_before_any_parsing(endpoint):
    status, ctype, body = call(endpoint, b"x" * (64 * 1024 + 1), raw=True)

    assert (status, ctype) == (413, "application/problem+json")
    assert body["code"] == "payload_too_large"


def test_base64_bodies_count_their_decoded_size(endpoint):
    status, _, _ = call(endpoint, {"amount": "1.00", "currency": "NGN"}, b64=True)

    assert status == 201


def test_domain_errors_keep_their_status_and_code(endpoint):
    status, _, body = call(endpoint, {"amount": "1.00", "currency": "NGN"}, path="/v1/samples/refuse")

    assert (status, body["code"]) == (409, "insufficient_funds")


def test_a_500_never_leaks_internals(endpoint):
    status, ctype, body = call(endpoint, {"amount": "1.00", "currency": "NGN"}, path="/v1/samples/boom")

    assert (status, ctype, body["code"]) == (500, "application/problem+json", "internal_error")
    assert "hunter2" not in json.dumps(body) and "RuntimeError" not in json.dumps(body)


def test_admission_asks_the_database_for_an_admin_on_admin_routes():
    from ledgerline.auth import admission

    assert admission.policy(ADMIN_ROUTE)["roles"] == ["admin"]
    assert admission.policy(ROUTE)["roles"] is None


def test_a_money_route_runs_only_through_api_money_and_api_money_only_for_money_routes(monkeypatch):
    money = routes.by_handler("functions.ledger.transfers_create")
    plain = routes.by_handler("functions.ledger.accounts_list")
    money_api, plain_api = Endpoint(money.handler, admit=trust_claims), Endpoint(plain.handler, admit=trust_claims)

    for unit in (money_api.read, money_api.write):
        with pytest.raises(RuntimeError, match=r"only through api\.money"):
            unit(lambda cur: None)
    with pytest.raises(RuntimeError, match="money=True"):
        plain_api.money("transfer", {})


@pytest.mark.parametrize("route", [r for r in routes.ROUTES if r.money], ids=lambda r: r.handler)
def test_every_money_route_states_its_policy(route):
    assert route.limit is routes.RateLimit.MONEY
    # a route row without its policy is refused when the table is built
    with pytest.raises(ValueError, match="money limit"):
        routes.Route(route.method, route.path, route.handler, route.access, route.description, money=True)
