"""Every money route is idempotent by construction: one parametrized test walks every
money row of the route table and proves, over HTTP, that a retry with the same key
replays the stored response (nothing moves again) and the same key with another body is
refused. A money row without a case here fails the suite."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from ledgerline import routes

MONEY_ROUTES = [r for r in routes.ROUTES if r.money]


@pytest.fixture(scope="module")
def world(admin, person, fake_gateway) -> dict[str, Any]:
    alice, bob = person(), person()
    a = alice.post("/v1/accounts", json={"currency": "NGN"}).json()["id"]
    b = bob.post("/v1/accounts", json={"currency": "NGN"}).json()["id"]
    funded = admin.post(
        "/v1/admin/adjustments",
        idempotency_key=True,
        json={"account_id": a, "amount": "1000.00", "currency": "NGN", "direction": "credit", "reason": "funds"},
    )
    assert funded.status_code == 201, funded.text
    return {"admin": admin, "alice": alice, "a": a, "b": b, "bob": bob}


def _hold(world: dict[str, Any]) -> str:
    r = world["alice"].post("/v1/holds", idempotency_key=True, json={"account_id": world["a"], "amount": "5.00",
                                                                     "currency": "NGN"})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _transaction(world: dict[str, Any]) -> str:
    r = world["alice"].post("/v1/transfers", idempotency_key=True, json={
        "from_account_id": world["a"], "to_account_id": world["b"], "amount": "1.00", "currency": "NGN"})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


DESTINATION = {"bank_code": "058", "account_number": "0123456789", "account_name": "Ada Obi"}


def _withdrawal(world: dict[str, Any]) -> str:
    r = world["alice"].post("/v1/withdrawals", idempotency_key=True, json={
        "account_id": world["a"], "amount": "5.00", "currency": "NGN", "destination": DESTINATION})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _flagged_payment(world: dict[str, Any]) -> str:
    """A top-up the gateway reports paid with less than asked: flagged, waiting for an admin."""
    from ledgerline.db import transaction
    from ledgerline.payments import store

    r = world["alice"].post("/v1/topups", idempotency_key=True, json={
        "account_id": world["a"], "amount": "50.00", "currency": "NGN", "provider": "paystack"})  # fmt: skip
    assert r.status_code == 201, r.text
    reference = r.json()["reference"]
    event = {"event_id": f"charge.success:{uuid.uuid4()}", "type": "charge.success", "reference": reference,
             "amount": "40.00", "currency": "NGN", "status": "succeeded"}  # fmt: skip
    gateway = {"provider_id": "1", "amount": "40.00", "currency": "NGN", "status": "succeeded"}
    result = transaction(lambda cur: store.confirm(
        cur, provider="paystack", event=event, decision="flagged", actor={"id": None, "type": "gateway"},
        gateway=gateway, reason="the gateway reports 40.00 NGN; the payment was created for 50.00 NGN"))  # fmt: skip
    assert result.outcome == "flagged"
    return str(r.json()["id"])


def _invoice(world: dict[str, Any]) -> str:
    """A pending invoice from Bob to Alice, for her to pay from her wallet."""
    import datetime

    alice_id = world["alice"].get("/v1/me").json()["id"]
    r = world["bob"].post("/v1/invoices", json={
        "buyer_id": alice_id, "currency": "NGN", "due_date": str(datetime.date.today() + datetime.timedelta(days=7)),
        "items": [{"description": "Consulting", "quantity": 1, "unit_price": "3.00"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _escrow(world: dict[str, Any], status: str = "AWAITING_PAYMENT") -> str:
    """An escrow Alice buys from Bob (2.00 NGN), moved to ``status`` through its routes."""
    alice = world["alice"]
    r = alice.post("/v1/escrows", idempotency_key=True, json={
        "seller_id": world["bob"].get("/v1/me").json()["id"], "amount": "2.00", "currency": "NGN",
        "description": "a lamp"})  # fmt: skip
    assert r.status_code == 201, r.text
    escrow = str(r.json()["id"])
    steps = {"FUNDED": [("fund", {"account_id": world["a"]})],
             "DISPUTED": [("fund", {"account_id": world["a"]}), ("dispute", {"reason": "it never came"})]}  # fmt: skip
    for action, body in steps.get(status, []):
        r = alice.post(f"/v1/escrows/{escrow}/{action}", idempotency_key=True, json=body)
        assert r.status_code == 200, r.text
    return escrow


def _payee(world: dict[str, Any], currency: str) -> dict[str, str]:
    """A merchant of the world (bulk payouts are theirs) with a funded wallet in
    ``currency`` and a payout account: made once per currency."""
    if f"payee_{currency}" not in world:
        from ledgerline.db import transaction
        from ledgerline.ledger.testing import create_user
        from tests.e2e.conftest import Client, session_token

        if "merchant" not in world:
            merchant_id = transaction(lambda cur: create_user(cur, "merchant"))
            world["merchant"] = Client(world["alice"].base_url, session_token(merchant_id, "merchant"))
        m = world["merchant"]
        account = m.post("/v1/accounts", json={"currency": currency}).json()["id"]
        r = world["admin"].post("/v1/admin/adjustments", idempotency_key=True, json={
            "account_id": account, "amount": "5000.00", "currency": currency, "direction": "credit",
            "reason": "funds"})  # fmt: skip
        assert r.status_code == 201, r.text
        r = m.post("/v1/payout-accounts", json={"bank_code": "058", "account_number": "0123456789"})
        assert r.status_code in (201, 409), r.text
        payee = m.get("/v1/payout-accounts").json()["items"][0]["id"]
        world[f"payee_{currency}"] = {"account": account, "payee": payee}
    return dict(world[f"payee_{currency}"])


def _bulk(world: dict[str, Any], amounts: list[str], currency: str = "NGN") -> dict[str, Any]:
    p = _payee(world, currency)
    return {"account_id": p["account"], "currency": currency,
            "items": [{"payout_account_id": p["payee"], "amount": a} for a in amounts]}  # fmt: skip


def _pending_bulk(world: dict[str, Any]) -> str:
    """A bulk payout above the approval limit (USD 1,000.00 by default): one admin decides."""
    body = _bulk(world, ["500.00", "500.00", "0.01"], "USD")
    r = world["merchant"].post("/v1/payouts/bulk", idempotency_key=True, json=body)
    assert r.status_code == 201 and r.json()["status"] == "pending_approval", r.text
    return str(r.json()["id"])


# route handler -> (caller, path, body, another body), built fresh for each use
CASES: dict[str, Callable[[dict[str, Any]], tuple[str, str, dict[str, Any], dict[str, Any]]]] = {
    "functions.ledger.transfers_create": lambda w: (
        "alice", "/v1/transfers",
        {"from_account_id": w["a"], "to_account_id": w["b"], "amount": "2.00", "currency": "NGN"},
        {"from_account_id": w["a"], "to_account_id": w["b"], "amount": "3.00", "currency": "NGN"},
    ),
    "functions.ledger.transfers_batch": lambda w: (
        "alice", "/v1/transfers/batch",
        {"mode": "atomic", "transfers": [
            {"from_account_id": w["a"], "to_account_id": w["b"], "amount": "1.00", "currency": "NGN"}] * 2},
        {"mode": "independent", "transfers": [
            {"from_account_id": w["a"], "to_account_id": w["b"], "amount": "1.00", "currency": "NGN"}] * 2},
    ),
    "functions.ledger.holds_create": lambda w: (
        "alice", "/v1/holds", {"account_id": w["a"], "amount": "2.00", "currency": "NGN"},
        {"account_id": w["a"], "amount": "3.00", "currency": "NGN"},
    ),
    "functions.ledger.holds_capture": lambda w: (
        "alice", f"/v1/holds/{_hold(w)}/capture", {"to_account_id": w["b"], "amount": "1.00"},
        {"to_account_id": w["b"], "amount": "2.00"},
    ),
    "functions.ledger.holds_void": lambda w: (
        "alice", f"/v1/holds/{_hold(w)}/void", {"reason": "changed my mind"}, {"reason": "another reason"},
    ),
    "functions.ledger.admin_adjustments_create": lambda w: (
        "admin", "/v1/admin/adjustments",
        {"account_id": w["b"], "amount": "1.00", "currency": "NGN", "direction": "credit", "reason": "goodwill"},
        {"account_id": w["b"], "amount": "9.00", "currency": "NGN", "direction": "credit", "reason": "goodwill"},
    ),
    "functions.ledger.admin_transactions_reverse": lambda w: (
        "admin", f"/v1/admin/transactions/{_transaction(w)}/reverse", {"reason": "sent in error"},
        {"reason": "another reason"},
    ),
    "functions.payments.topups_create": lambda w: (
        "alice", "/v1/topups", {"account_id": w["a"], "amount": "10.00", "currency": "NGN", "provider": "paystack"},
        {"account_id": w["a"], "amount": "11.00", "currency": "NGN", "provider": "paystack"},
    ),
    "functions.payments.admin_payments_resolve": lambda w: (
        "admin", f"/v1/admin/payments/{_flagged_payment(w)}/resolve", {"outcome": "fail", "reason": "reviewed"},
        {"outcome": "credit", "reason": "reviewed"},
    ),
    "functions.payments.withdrawals_create": lambda w: (
        "alice", "/v1/withdrawals",
        {"account_id": w["a"], "amount": "2.00", "currency": "NGN", "destination": DESTINATION},
        {"account_id": w["a"], "amount": "3.00", "currency": "NGN", "destination": DESTINATION},
    ),
    "functions.payments.admin_withdrawals_approve": lambda w: (
        "admin", f"/v1/admin/withdrawals/{_withdrawal(w)}/approve", {}, {"unexpected": "body"},
    ),
    "functions.payments.admin_withdrawals_reject": lambda w: (
        "admin", f"/v1/admin/withdrawals/{_withdrawal(w)}/reject", {"reason": "wrong bank"},
        {"reason": "another reason"},
    ),
    "functions.payments.payouts_bulk_create": lambda w: (
        "merchant", "/v1/payouts/bulk", _bulk(w, ["1.00", "2.00"]), _bulk(w, ["1.00", "3.00"]),
    ),
    "functions.payments.payouts_bulk_approve": lambda w: (
        "admin", f"/v1/admin/payouts/bulk/{_pending_bulk(w)}/approve", {}, {"unexpected": "body"},
    ),
    "functions.payments.payouts_bulk_reject": lambda w: (
        "admin", f"/v1/admin/payouts/bulk/{_pending_bulk(w)}/reject", {"reason": "not payroll"},
        {"reason": "another reason"},
    ),
    "functions.invoices.invoices_pay": lambda w: (
        "alice", f"/v1/invoices/{_invoice(w)}/pay", {"account_id": w["a"]}, {"account_id": w["b"]},
    ),
    "functions.escrow.escrows_create": lambda w: (
        "alice", "/v1/escrows",
        {"seller_id": w["bob"].get("/v1/me").json()["id"], "amount": "2.00", "currency": "NGN", "description": "a"},
        {"seller_id": w["bob"].get("/v1/me").json()["id"], "amount": "3.00", "currency": "NGN", "description": "a"},
    ),
    "functions.escrow.escrows_fund": lambda w: (
        "alice", f"/v1/escrows/{_escrow(w)}/fund", {"account_id": w["a"]}, {"account_id": w["b"]},
    ),
    "functions.escrow.escrows_release": lambda w: (
        "alice", f"/v1/escrows/{_escrow(w, 'FUNDED')}/release", {}, {"unexpected": "body"},
    ),
    "functions.escrow.escrows_refund": lambda w: (
        "bob", f"/v1/escrows/{_escrow(w, 'FUNDED')}/refund", {}, {"unexpected": "body"},
    ),
    "functions.escrow.escrows_dispute": lambda w: (
        "alice", f"/v1/escrows/{_escrow(w, 'FUNDED')}/dispute", {"reason": "not as described"},
        {"reason": "another reason"},
    ),
    "functions.escrow.admin_escrows_resolve": lambda w: (
        "admin", f"/v1/admin/escrows/{_escrow(w, 'DISPUTED')}/resolve", {"outcome": "refund", "reason": "reviewed"},
        {"outcome": "release", "reason": "reviewed"},
    ),
}  # fmt: skip


def test_every_money_route_has_a_case():
    assert {r.handler for r in MONEY_ROUTES} == set(CASES)


@pytest.mark.parametrize("route", MONEY_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_a_money_route_replays_with_the_same_key_and_refuses_it_with_another_body(world, route, owner_conn):
    who, path, body, other = CASES[route.handler](world)
    client, key = world[who], str(uuid.uuid4())

    def transactions() -> int:
        with owner_conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM transactions")
            return int(cur.fetchone()[0])

    first = client.post(path, json=body, idempotency_key=key)
    assert 200 <= first.status_code < 300, first.text
    moved = transactions()
    again = client.post(path, json=body, idempotency_key=key)
    mismatch = client.post(path, json=other, idempotency_key=key)

    assert (again.status_code, again.text, again.headers.get("Idempotent-Replayed")) == (
        first.status_code,
        first.text,
        "true",
    )
    assert transactions() == moved  # nothing ran again
    assert mismatch.status_code == 422 and mismatch.json()["code"] == "idempotency_key_reused"
    assert client.post(path, json=body).json()["code"] == "idempotency_key_required"


def test_a_transfer_as_posted_is_the_transfer_as_read(world):
    posted = world["alice"].post("/v1/transfers", idempotency_key=True, json={
        "from_account_id": world["a"], "to_account_id": world["b"], "amount": "1.50", "currency": "NGN"})  # fmt: skip
    read = world["alice"].get(f"/v1/transfers/{posted.json()['id']}")

    assert read.json() == posted.json()


def test_fifty_requests_at_once_at_a_limit_of_ten_let_exactly_ten_through(person, monkeypatch, owner_conn):
    from ledgerline import config

    caller = person()
    monkeypatch.setenv("LEDGERLINE_RATE_LIMITS", "login=off;otp=off;money=off;default=10/minute;auth=off")
    config.settings.cache_clear()
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM rate_limit_buckets WHERE key LIKE 'default:%'")
    statuses: list[int] = []
    barrier = threading.Barrier(50)

    def get() -> None:
        barrier.wait(timeout=30)
        statuses.append(caller.get("/v1/accounts").status_code)

    try:
        threads = [threading.Thread(target=get) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()
        with owner_conn.cursor() as cur:
            cur.execute("DELETE FROM rate_limit_buckets WHERE key LIKE 'default:%'")

    assert sorted(statuses) == [200] * 10 + [429] * 40
