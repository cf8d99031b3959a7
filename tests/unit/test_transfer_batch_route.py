"""The batch route's own policy (issue 19), without a database: its body limit above the
default, velocity weighed by its items, and the route table refusing a weight without
velocity."""

from __future__ import annotations

import json
import uuid

import pytest

from ledgerline import config, errors, routes
from ledgerline.auth import admission
from ledgerline.caller import Request
from ledgerline.http import gate

BATCH = routes.by_handler("functions.ledger.transfers_batch")


def event(body: str) -> dict:
    return {"headers": {"content-type": "application/json"}, "body": body}


def batch_body(n: int) -> dict:
    one = {"from_account_id": str(uuid.uuid4()), "to_account_id": str(uuid.uuid4()), "amount": "1.00",
           "currency": "NGN", "description": "payroll line"}  # fmt: skip
    return {"mode": "atomic", "transfers": [one] * n}


def test_a_thousand_transfers_fit_the_batch_routes_limit_and_not_the_default():
    text = json.dumps(batch_body(1000))
    assert 64 * 1024 < len(text) < BATCH.max_body

    assert len(gate.check(event(text), max_body_bytes=BATCH.max_body)["transfers"]) == 1000
    with pytest.raises(errors.PayloadTooLarge):
        gate.check(event(text))
    with pytest.raises(errors.PayloadTooLarge):
        gate.check(event(" " * (BATCH.max_body + 1)), max_body_bytes=BATCH.max_body)


def test_only_the_batch_route_raises_the_body_limit():
    assert [r.path for r in routes.ROUTES if r.max_body is not None and r.handler.startswith("functions.ledger.")] == [
        "/v1/transfers/batch"
    ]


@pytest.mark.parametrize(
    ("body", "weight"), [(batch_body(30), 30), (batch_body(1), 1), ({"transfers": "x"}, 1), (None, 1)]
)
def test_velocity_weighs_a_batch_by_its_items(monkeypatch, body, weight):
    monkeypatch.setenv("LEDGERLINE_VELOCITY", "20/60s")
    monkeypatch.setenv("LEDGERLINE_RATE_LIMITS", "money=10/minute")
    config.settings.cache_clear()
    try:
        claims = {"typ": "access", "sub": str(uuid.uuid4()), "jti": str(uuid.uuid4()), "sid": str(uuid.uuid4())}
        request = Request("r", "192.0.2.1", "ua", {}, None, body)
        checks = admission.prepare(BATCH, request, claims).checks
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()

    [velocity] = [c for c in checks if c["name"] == "velocity"]
    assert velocity["weight"] == weight
    assert {c["weight"] for c in checks if c["name"] != "velocity"} == {1}  # the money limit counts requests


def test_a_velocity_weight_needs_velocity():
    with pytest.raises(ValueError, match="velocity_items"):
        routes.Route("POST", "/v1/x", "functions.x", routes.Access.USER, "x", money=True, limit=routes.RateLimit.MONEY,
                     velocity_items="items")  # fmt: skip
