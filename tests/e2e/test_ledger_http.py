"""The ledger's other routes over real HTTP: accounts, entries, balance-at-time, holds,
and the administrators' adjustments, reversals, checks, freezes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest


@pytest.fixture(scope="module")
def fund(admin):
    def credit(account_id, amount, currency="NGN"):
        r = admin.post(
            "/v1/admin/adjustments",
            idempotency_key=True,
            json={
                "account_id": account_id,
                "amount": amount,
                "currency": currency,
                "direction": "credit",
                "reason": "test funds",
            },
        )
        assert r.status_code == 201, r.text
        return r.json()

    return credit


def open_account(client, currency="NGN", **extra):
    r = client.post("/v1/accounts", json={"currency": currency, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def problem(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    return response.json()


# Accounts ------------------------------------------------------------------------------------


def test_open_an_account_and_read_it_back(person):
    alice = person()
    account = open_account(alice, "KES", name="Float")
    assert account["currency"] == "KES" and account["name"] == "Float" and account["kind"] == "user_wallet"
    assert account["status"] == "active"
    zero = {"amount": "0.00", "currency": "KES"}
    assert account["balance"] == {"posted": zero, "held": zero, "available": zero}
    assert alice.get(f"/v1/accounts/{account['id']}").json() == account


def test_opening_an_account_refuses_bad_bodies(person):
    alice = person()
    problem(alice.post("/v1/accounts", json={"currency": "XYZ"}), 422, "validation_error")
    problem(alice.post("/v1/accounts", json={"currency": "NGN", "color": "blue"}), 422, "validation_error")
    problem(alice.post("/v1/accounts", json={}), 422, "validation_error")
    problem(alice.post("/v1/accounts", json={"currency": "NGN", "name": ""}), 422, "validation_error")
    assert alice.get("/v1/accounts").json()["items"] == []


def test_accounts_list_is_the_callers_own_in_pages(person):
    alice, bob = person(), person()
    mine = [open_account(alice, c)["id"] for c in ("NGN", "USD", "EUR")]
    open_account(bob)
    first = alice.get("/v1/accounts", params={"limit": 2}).json()
    second = alice.get("/v1/accounts", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [a["id"] for a in first["items"] + second["items"]] == mine
    assert second["next_cursor"] is None
    problem(alice.get("/v1/accounts", params={"limit": 0}), 422, "validation_error")
    problem(alice.get("/v1/accounts", params={"limit": "many"}), 422, "validation_error")
    problem(alice.get("/v1/accounts", params={"cursor": "zzz"}), 422, "validation_error")


def test_someone_elses_account_entries_and_balance_are_404(person, fund):
    alice, mallory = person(), person()
    account = open_account(alice)["id"]
    fund(account, "50")
    for path in (f"/v1/accounts/{account}", f"/v1/accounts/{account}/entries", f"/v1/accounts/{account}/balance"):
        body = problem(mallory.get(path), 404, "not_found")
        assert set(body) == {"type", "title", "status", "detail", "code"}
        assert "50.00" not in body["detail"] and "balance" not in body
    problem(alice.get("/v1/accounts/not-a-uuid"), 404, "not_found")
    problem(alice.get(f"/v1/accounts/{uuid.uuid4()}"), 404, "not_found")


def test_an_administrator_can_read_any_account(person, fund, admin):
    account = open_account(person())["id"]
    fund(account, "12.30")
    assert admin.get(f"/v1/accounts/{account}").json()["balance"]["posted"]["amount"] == "12.30"


def test_accounts_need_a_token(client):
    problem(client.get("/v1/accounts"), 401, "unauthorized")


# Entries and balances --------------------------------------------------------------------------


def test_entries_page_newest_first_with_balance_after(person, fund):
    alice, bob = person(), person()
    a, b = open_account(alice)["id"], open_account(bob)["id"]
    fund(a, "100")
    for amount in ("1.00", "2.00", "3.00"):
        r = alice.post(
            "/v1/transfers",
            idempotency_key=True,
            json={"from_account_id": a, "to_account_id": b, "amount": amount, "currency": "NGN"},
        )
        assert r.status_code == 201, r.text
    page = alice.get(f"/v1/accounts/{a}/entries", params={"limit": 2}).json()
    rest = alice.get(f"/v1/accounts/{a}/entries", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    entries = page["items"] + rest["items"]
    assert [e["amount"]["amount"] for e in entries] == ["-3.00", "-2.00", "-1.00", "100.00"]
    assert [e["balance_after"]["amount"] for e in entries] == ["94.00", "97.00", "99.00", "100.00"]
    assert rest["next_cursor"] is None
    assert set(entries[0]) == {"id", "transaction_id", "amount", "entry_type", "balance_after", "created_at"}


def test_balance_now_and_at_a_past_instant(person, fund):
    alice = person()
    a = open_account(alice)["id"]
    fund(a, "10")
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    fund(a, "5")
    now = alice.get(f"/v1/accounts/{a}/balance").json()
    assert now["account_id"] == a and now["posted"] == {"amount": "15.00", "currency": "NGN"}
    past = alice.get(f"/v1/accounts/{a}/balance", params={"at": between.isoformat().replace("+00:00", "Z")}).json()
    assert past["posted"] == {"amount": "10.00", "currency": "NGN"}
    long_ago = alice.get(f"/v1/accounts/{a}/balance", params={"at": "2001-01-01T00:00:00Z"}).json()
    assert long_ago["posted"]["amount"] == "0.00"
    problem(alice.get(f"/v1/accounts/{a}/balance", params={"at": "yesterday"}), 422, "validation_error")
    problem(alice.get(f"/v1/accounts/{a}/balance", params={"at": "2024-01-01T00:00:00"}), 422, "validation_error")
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    problem(alice.get(f"/v1/accounts/{a}/balance", params={"at": future}), 422, "validation_error")


# Holds ---------------------------------------------------------------------------------------------


def hold(client, body, key=True):
    return client.post("/v1/holds", json=body, idempotency_key=key)


def test_hold_capture_in_part_then_nothing_more(person, fund):
    alice, shop = person(), person()
    a, s = open_account(alice)["id"], open_account(shop)["id"]
    fund(a, "100")
    r = hold(alice, {"account_id": a, "amount": "40.00", "currency": "NGN", "expires_in_seconds": 600})
    assert r.status_code == 201, r.text
    h = r.json()
    assert (h["status"], h["amount"]["amount"], h["account_id"]) == ("active", "40.00", a)
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["available"]["amount"] == "60.00"
    captured = alice.post(
        f"/v1/holds/{h['id']}/capture", idempotency_key=True, json={"to_account_id": s, "amount": "25.00"}
    )
    assert captured.status_code == 200, captured.text
    assert (captured.json()["status"], captured.json()["captured_amount"]["amount"]) == ("posted", "25.00")
    balance = alice.get(f"/v1/accounts/{a}").json()["balance"]
    assert (balance["posted"]["amount"], balance["held"]["amount"]) == ("75.00", "0.00")
    assert shop.get(f"/v1/accounts/{s}").json()["balance"]["posted"]["amount"] == "25.00"
    problem(
        alice.post(f"/v1/holds/{h['id']}/capture", idempotency_key=True, json={"to_account_id": s}),
        409,
        "invalid_state_transition",
    )
    problem(alice.post(f"/v1/holds/{h['id']}/void", idempotency_key=True), 409, "invalid_state_transition")


def test_void_releases_and_bad_holds_are_refused(person, fund):
    alice, mallory = person(), person()
    a = open_account(alice)["id"]
    fund(a, "10")
    problem(hold(alice, {"account_id": a, "amount": "10.01", "currency": "NGN"}), 409, "insufficient_funds")
    problem(hold(alice, {"account_id": a, "amount": "1.001", "currency": "NGN"}), 422, "validation_error")
    problem(hold(alice, {"account_id": a, "amount": 1, "currency": "NGN"}), 422, "validation_error")
    problem(
        hold(alice, {"account_id": a, "amount": "1", "currency": "NGN", "expires_in_seconds": 0}),
        422,
        "validation_error",
    )
    problem(hold(alice, {"account_id": a, "amount": "1", "currency": "NGN"}, key=None), 400, "idempotency_key_required")
    problem(hold(mallory, {"account_id": a, "amount": "1", "currency": "NGN"}), 404, "not_found")
    h = hold(alice, {"account_id": a, "amount": "10.00", "currency": "NGN"}).json()
    problem(mallory.post(f"/v1/holds/{h['id']}/void", idempotency_key=True), 404, "not_found")
    problem(
        mallory.post(f"/v1/holds/{h['id']}/capture", idempotency_key=True, json={"to_account_id": a}), 404, "not_found"
    )
    voided = alice.post(f"/v1/holds/{h['id']}/void", idempotency_key=True)
    assert (voided.status_code, voided.json()["status"]) == (200, "voided")
    problem(
        alice.post(f"/v1/holds/{h['id']}/void", json={"because": "x"}, idempotency_key=True), 422, "validation_error"
    )
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["available"]["amount"] == "10.00"


# Administration ----------------------------------------------------------------------------------------


def test_adjustments_are_for_administrators_with_a_reason(person, admin):
    alice = person()
    a = open_account(alice)["id"]
    body = {"account_id": a, "amount": "5.00", "currency": "NGN", "direction": "credit", "reason": "goodwill"}
    problem(alice.post("/v1/admin/adjustments", idempotency_key=True, json=body), 403, "forbidden")
    problem(
        admin.post("/v1/admin/adjustments", idempotency_key=True, json={**body, "reason": ""}), 422, "validation_error"
    )
    problem(admin.post("/v1/admin/adjustments", json=body), 400, "idempotency_key_required")
    r = admin.post("/v1/admin/adjustments", idempotency_key=True, json=body)
    assert r.status_code == 201, r.text
    assert set(r.json()) >= {"transaction_id", "account_id", "amount", "direction", "reason", "created_at"}
    debit = {**body, "direction": "debit", "amount": "5.01", "reason": "reclaim"}
    problem(admin.post("/v1/admin/adjustments", idempotency_key=True, json=debit), 409, "insufficient_funds")
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["posted"]["amount"] == "5.00"


def test_an_administrator_reverses_a_transfer_once(person, fund, admin):
    alice, bob = person(), person()
    a, b = open_account(alice)["id"], open_account(bob)["id"]
    fund(a, "50")
    t = alice.post(
        "/v1/transfers",
        idempotency_key=True,
        json={"from_account_id": a, "to_account_id": b, "amount": "20.00", "currency": "NGN"},
    ).json()
    problem(
        alice.post(f"/v1/admin/transactions/{t['id']}/reverse", idempotency_key=True, json={"reason": "mine"}),
        403,
        "forbidden",
    )
    problem(
        admin.post(f"/v1/admin/transactions/{t['id']}/reverse", idempotency_key=True, json={}), 422, "validation_error"
    )
    r = admin.post(f"/v1/admin/transactions/{t['id']}/reverse", idempotency_key=True, json={"reason": "sent in error"})
    assert r.status_code == 201, r.text
    reversal = r.json()
    assert (reversal["kind"], reversal["reverses"], reversal["reason"]) == ("reversal", t["id"], "sent in error")
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["posted"]["amount"] == "50.00"
    assert alice.get(f"/v1/transfers/{t['id']}").json()["status"] == "reversed"
    again = admin.post(f"/v1/admin/transactions/{t['id']}/reverse", idempotency_key=True, json={"reason": "again"})
    problem(again, 409, "invalid_state_transition")
    problem(
        admin.post(f"/v1/admin/transactions/{uuid.uuid4()}/reverse", idempotency_key=True, json={"reason": "who"}),
        404,
        "not_found",
    )


def test_freeze_and_unfreeze(person, fund, admin):
    alice = person()
    a = open_account(alice)["id"]
    problem(alice.post(f"/v1/admin/accounts/{a}/freeze"), 403, "forbidden")
    frozen = admin.post(f"/v1/admin/accounts/{a}/freeze", json={"reason": "kyc"})
    assert (frozen.status_code, frozen.json()["status"]) == (200, "frozen")
    problem(admin.post(f"/v1/admin/accounts/{a}/freeze"), 409, "invalid_state_transition")
    problem(admin.post(f"/v1/admin/accounts/{a}/freeze", json={"why": 1}), 422, "validation_error")
    assert admin.post(f"/v1/admin/accounts/{a}/unfreeze").json()["status"] == "active"
    problem(admin.post(f"/v1/admin/accounts/{uuid.uuid4()}/freeze"), 404, "not_found")


def test_the_ledger_check_says_the_books_are_right(person, admin):
    problem(person().get("/v1/admin/ledger/check"), 403, "forbidden")
    assert admin.get("/v1/admin/ledger/check").json() == {"ok": True, "findings": []}


def test_openapi_documents_the_ledger_schemas_and_the_idempotency_header(client):
    doc = client.get("/v1/openapi.json").json()
    transfer = doc["paths"]["/v1/transfers"]["post"]
    assert {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    } in transfer["parameters"]
    schema = doc["components"]["schemas"]["CreateTransfer"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"from_account_id", "to_account_id", "amount", "currency"}
