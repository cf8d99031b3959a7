"""Over real HTTP: a refusal never describes someone else's account.

Paying another user's account that cannot take the money (it holds another currency, is
frozen or closed) is one answer, 409 ``conflict`` with ``account <id> cannot receive this
transfer``, for a transfer and for a hold capture alike; a system account is exactly as
unknown as a missing one. The caller's own accounts keep their detailed messages.
"""

from __future__ import annotations

import uuid

from ledgerline import ledger
from ledgerline.db import transaction
from ledgerline.ledger.testing import TEST_ADMIN


def freeze(admin, account_id):
    r = admin.post(f"/v1/admin/accounts/{account_id}/freeze", json={"reason": "review"})
    assert r.status_code == 200, r.text


def send(client, from_id, to_id, amount="1.00", currency="NGN"):
    body = {"from_account_id": from_id, "to_account_id": to_id, "amount": amount, "currency": currency}
    return client.post("/v1/transfers", json=body, idempotency_key=True)


def problem(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def without_id(response, account_id):
    """The status, the content type and the whole problem with the account id taken out."""
    body = {k: (v.replace(account_id, "<id>") if isinstance(v, str) else v) for k, v in response.json().items()}
    return response.status_code, response.headers["Content-Type"], body


def balances(admin, *account_ids):
    return [admin.get(f"/v1/accounts/{a}").json()["balance"] for a in account_ids]


def test_a_foreign_usd_or_frozen_account_gets_the_same_answer_and_nothing_moves(wallet, admin):
    alice, a = wallet("NGN", "100")
    _, usd = wallet("USD", "5")
    _, frozen = wallet("NGN", "3")
    freeze(admin, frozen)
    before = balances(admin, a, usd, frozen)

    to_usd = send(alice, a, usd, currency="NGN")
    to_frozen = send(alice, a, frozen)

    for response, account_id in ((to_usd, usd), (to_frozen, frozen)):
        body = problem(response, 409, "conflict")
        assert body["detail"] == f"account {account_id} cannot receive this transfer"
        for word in ("USD", "frozen", "holds", "NGN"):
            assert word not in response.text
    assert without_id(to_usd, usd) == without_id(to_frozen, frozen)
    assert balances(admin, a, usd, frozen) == before
    assert alice.get(f"/v1/accounts/{a}/entries").json()["items"][0]["entry_type"] == "adjustment"


def test_a_foreign_closed_account_gets_that_answer_too(wallet, admin):
    alice, a = wallet("NGN", "100")
    _, usd = wallet("USD")
    _, closed = wallet("NGN")
    transaction(lambda cur: ledger.close(cur, closed, actor=TEST_ADMIN, reason="closed by the customer"))
    to_closed = send(alice, a, closed)
    problem(to_closed, 409, "conflict")
    assert "closed" not in to_closed.text
    assert without_id(to_closed, closed) == without_id(send(alice, a, usd), usd)


def test_a_system_account_and_a_missing_one_are_the_same_not_found(wallet):
    alice, a = wallet("NGN", "100")
    fees = str(transaction(lambda cur: ledger.system_account(cur, "fees_revenue", "NGN")).id)
    ghost = str(uuid.uuid4())
    to_fees, to_ghost = send(alice, a, fees), send(alice, a, ghost)
    assert problem(to_fees, 404, "not_found")["detail"] == f"account {fees} not found"
    assert without_id(to_fees, fees) == without_id(to_ghost, ghost)
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["posted"]["amount"] == "100.00"


def test_the_callers_own_accounts_keep_their_detailed_messages(wallet, admin):
    alice, a = wallet("NGN", "10")
    _, own_usd = wallet("USD", client=alice)
    _, own_frozen = wallet("NGN", client=alice)
    _, bob = wallet("NGN")
    freeze(admin, own_frozen)
    assert "holds USD, not NGN" in problem(send(alice, a, own_usd), 422, "validation_error")["detail"]
    assert "holds NGN, not USD" in problem(send(alice, a, own_usd, currency="USD"), 422, "validation_error")["detail"]
    assert "is frozen" in problem(send(alice, a, own_frozen), 409, "conflict")["detail"]
    assert "available" in problem(send(alice, a, bob, amount="10.01"), 409, "insufficient_funds")["detail"]
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["posted"]["amount"] == "10.00"


def test_capturing_a_hold_to_a_foreign_frozen_or_usd_account_is_the_same_answer(wallet, admin):
    alice, a = wallet("NGN", "50")
    _, usd = wallet("USD")
    _, frozen = wallet("NGN")
    _, own_frozen = wallet("NGN", client=alice)
    freeze(admin, frozen)
    freeze(admin, own_frozen)
    held = alice.post("/v1/holds", idempotency_key=True, json={"account_id": a, "amount": "20.00", "currency": "NGN"})
    assert held.status_code == 201, held.text
    h = held.json()["id"]

    def capture(to_id):
        return alice.post(f"/v1/holds/{h}/capture", idempotency_key=True, json={"to_account_id": to_id})

    to_frozen, to_usd = capture(frozen), capture(usd)
    for response, account_id in ((to_frozen, frozen), (to_usd, usd)):
        assert problem(response, 409, "conflict")["detail"] == f"account {account_id} cannot receive this transfer"
        assert "frozen" not in response.text and "USD" not in response.text
    assert without_id(to_frozen, frozen) == without_id(to_usd, usd)
    assert without_id(to_frozen, frozen) == without_id(send(alice, a, frozen), frozen)
    assert "is frozen" in problem(capture(own_frozen), 409, "conflict")["detail"]
    balance = alice.get(f"/v1/accounts/{a}").json()["balance"]
    assert (balance["posted"]["amount"], balance["held"]["amount"]) == ("50.00", "20.00")
    assert admin.get(f"/v1/accounts/{frozen}").json()["balance"]["posted"]["amount"] == "0.00"
