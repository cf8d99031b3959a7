"""Ledger pieces that need no database: request schemas, legs, cursors, access, keys."""

import importlib
import inspect
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from ledgerline import errors, idempotency, routes
from ledgerline import pagination as paging
from ledgerline.ledger.access import read_scope
from ledgerline.ledger.model import Balance, Transfer
from ledgerline.ledger.postings import Leg, check_legs
from ledgerline.ledger.schemas import CaptureHold, CreateAdjustment, CreateHold, CreateTransfer

A, B = uuid.uuid4(), uuid.uuid4()


def transfer_body(**overrides):
    return {"from_account_id": str(A), "to_account_id": str(B), "amount": "10.00", "currency": "NGN", **overrides}


def test_a_transfer_body_keeps_the_amount_as_text():
    body = CreateTransfer.model_validate(transfer_body(description="lunch"))
    assert (body.amount, body.from_account_id) == ("10.00", A)


@pytest.mark.parametrize("amount", [10, 10.5, Decimal("10.5"), None, True, ["10"]])
def test_an_amount_that_is_not_a_string_is_refused_with_advice(amount):
    with pytest.raises(ValidationError, match="as a string"):
        CreateTransfer.model_validate(transfer_body(amount=amount))


@pytest.mark.parametrize(
    "body",
    [
        transfer_body(extra="x"),
        transfer_body(from_account_id="not-a-uuid"),
        transfer_body(currency=566),
        {k: v for k, v in transfer_body().items() if k != "currency"},
        transfer_body(description="x" * 501),
    ],
)
def test_malformed_transfer_bodies_are_refused(body):
    with pytest.raises(ValidationError):
        CreateTransfer.model_validate(body)


def test_other_bodies_refuse_unknown_fields_and_bad_values():
    with pytest.raises(ValidationError):
        CreateHold.model_validate({"account_id": str(A), "amount": "1", "currency": "NGN", "expires_in_seconds": 0})
    with pytest.raises(ValidationError):
        CreateHold.model_validate({"account_id": str(A), "amount": "1", "currency": "NGN", "expires_in_seconds": "60"})
    with pytest.raises(ValidationError):
        CaptureHold.model_validate({"to_account_id": str(B), "amount": 5})
    with pytest.raises(ValidationError):
        CreateAdjustment.model_validate(
            {"account_id": str(A), "amount": "1", "currency": "NGN", "direction": "sideways", "reason": "why"}
        )
    with pytest.raises(ValidationError):
        CreateAdjustment.model_validate({"account_id": str(A), "amount": "1", "currency": "NGN", "direction": "credit"})


def test_legs_must_balance_per_currency_and_respect_minor_units():
    check_legs([Leg(A, Decimal("-5"), "NGN"), Leg(B, Decimal("5"), "NGN")])
    with pytest.raises(errors.ValidationFailed, match="at least two"):
        check_legs([Leg(A, Decimal("5"), "NGN")])
    with pytest.raises(errors.ValidationFailed, match="sum to zero"):
        check_legs([Leg(A, Decimal("-5"), "NGN"), Leg(B, Decimal("5"), "USD")])
    with pytest.raises(errors.ValidationFailed, match="JPY"):
        check_legs([Leg(A, Decimal("-1.5"), "JPY"), Leg(B, Decimal("1.5"), "JPY")])
    with pytest.raises(errors.ValidationFailed, match="non-zero"):
        check_legs([Leg(A, Decimal("0"), "NGN"), Leg(B, Decimal("0"), "NGN")])
    with pytest.raises(errors.ValidationFailed, match="finite"):
        check_legs([Leg(A, Decimal("NaN"), "NGN"), Leg(B, Decimal("1"), "NGN")])
    with pytest.raises(errors.ValidationFailed, match="too large"):
        check_legs([Leg(A, Decimal("-1e15"), "NGN"), Leg(B, Decimal("1e15"), "NGN")])


def test_cursors_round_trip_and_garbage_is_a_422():
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert paging.decode(paging.encode(at, A)) == (at, A)
    assert paging.decode(None) is None
    for bad in ["garbage!", "bm90LWEtY3Vyc29y", paging.encode(at, A)[:-3]]:
        with pytest.raises(errors.ValidationFailed, match="cursor"):
            paging.decode(bad)
    assert paging.check_limit(None) == 50
    for bad in (0, 201, -1):
        with pytest.raises(errors.ValidationFailed, match="limit"):
            paging.check_limit(bad)


def test_users_read_their_own_objects_admins_and_auditors_anyones():
    class Caller:
        def __init__(self, role):
            self.id, self.role = uuid.uuid4(), role

    user = Caller("user")
    assert read_scope(user) == user.id
    assert read_scope(Caller("merchant")) is not None
    assert read_scope(Caller("admin")) is None
    assert read_scope(Caller("auditor")) is None


def test_money_json_shapes():
    assert Balance(Decimal("10.0000"), Decimal("2.5000"), "NGN").to_json() == {
        "posted": {"amount": "10.00", "currency": "NGN"},
        "held": {"amount": "2.50", "currency": "NGN"},
        "available": {"amount": "7.50", "currency": "NGN"},
    }
    t = Transfer(uuid.uuid4(), A, B, Decimal("7.0000"), "JPY", None, datetime.now(UTC))
    assert t.to_json()["amount"] == {"amount": "7", "currency": "JPY"}
    assert t.to_json()["status"] == "posted"


def test_idempotency_keys_must_be_uuid_v4():
    key = uuid.uuid4()
    assert idempotency.parse_key(str(key)) == key
    with pytest.raises(errors.IdempotencyKeyRequired):
        idempotency.parse_key(None)
    with pytest.raises(errors.IdempotencyKeyInvalid):
        idempotency.parse_key(str(uuid.uuid1()))


LEDGER_ROUTES = [r for r in routes.ROUTES if r.handler.startswith("functions.ledger.")]


@pytest.mark.parametrize("route", [r for r in LEDGER_ROUTES if r.money], ids=lambda r: r.name)
def test_every_money_route_goes_through_the_idempotency_protocol(route):
    source = inspect.getsource(importlib.import_module(route.handler))
    assert "api.money(" in source


def test_ledger_routes_are_exactly_the_contracts():
    assert {(r.method, r.path, r.access.value, r.money) for r in LEDGER_ROUTES} == {
        ("POST", "/v1/accounts", "user", False),
        ("GET", "/v1/accounts", "user", False),
        ("GET", "/v1/accounts/{id}", "user", False),
        ("GET", "/v1/accounts/{id}/entries", "user", False),
        ("GET", "/v1/accounts/{id}/balance", "user", False),
        ("POST", "/v1/transfers", "user", True),
        ("POST", "/v1/transfers/batch", "user", True),
        ("GET", "/v1/transfers/{id}", "user", False),
        ("POST", "/v1/holds", "user", True),
        ("POST", "/v1/holds/{id}/capture", "user", True),
        ("POST", "/v1/holds/{id}/void", "user", True),
        ("POST", "/v1/admin/adjustments", "admin", True),
        ("POST", "/v1/admin/transactions/{id}/reverse", "admin", True),
        ("GET", "/v1/admin/ledger/check", "admin", False),
        ("POST", "/v1/admin/accounts/{id}/freeze", "admin", False),
        ("POST", "/v1/admin/accounts/{id}/unfreeze", "admin", False),
    }


def test_a_money_operation_audited_outside_the_known_categories_is_refused_when_declared():
    from ledgerline.ledger.operations import Operation

    with pytest.raises(ValueError, match="unknown namespace 'payout'"):
        Operation("payout", 201, "payout.completed", "payout.failed")
    with pytest.raises(ValueError, match="different categories"):
        Operation("transfer", 201, "transfer.completed", "admin.transfer_failed")
