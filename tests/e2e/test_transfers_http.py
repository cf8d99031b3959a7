"""POST /v1/transfers through the local gateway over real HTTP: the happy path, every
bad input of the ledger issue (a clear problem+json 4xx, nothing moved), and the
Idempotency-Key protocol as a client sees it."""

from __future__ import annotations

import threading
import uuid

import pytest

from ledgerline import ledger
from ledgerline.db import transaction
from ledgerline.ledger.testing import TEST_ADMIN


def state(client, account_id):
    """What a bad request must not change: the balance and the entry list."""
    account = client.get(f"/v1/accounts/{account_id}").json()
    entries = client.get(f"/v1/accounts/{account_id}/entries").json()["items"]
    return account["balance"], [e["id"] for e in entries]


def send(client, body, key=True, **kw):
    return client.post("/v1/transfers", json=body, idempotency_key=key, **kw)


def assert_problem(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["detail"] and problem["title"] and problem["type"]
    return problem


def test_a_transfer_moves_money_and_both_sides_can_see_it(wallet, person):
    alice, a = wallet("NGN", "100.00")
    bob, b = wallet("NGN")
    r = send(
        alice, {"from_account_id": a, "to_account_id": b, "amount": "25.50", "currency": "NGN", "description": "dinner"}
    )
    assert r.status_code == 201, r.text
    transfer = r.json()
    assert transfer["amount"] == {"amount": "25.50", "currency": "NGN"}
    assert (transfer["from_account_id"], transfer["to_account_id"], transfer["status"]) == (a, b, "posted")
    assert "Idempotent-Replayed" not in r.headers
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["available"] == {"amount": "74.50", "currency": "NGN"}
    assert bob.get(f"/v1/accounts/{b}").json()["balance"]["posted"] == {"amount": "25.50", "currency": "NGN"}
    assert alice.get(f"/v1/transfers/{transfer['id']}").json() == transfer
    assert bob.get(f"/v1/transfers/{transfer['id']}").json() == transfer
    assert_problem(person().get(f"/v1/transfers/{transfer['id']}"), 404, "not_found")


BAD_AMOUNTS = [
    ("0", "NGN"),
    ("-5", "NGN"),
    ("1e3", "NGN"),
    ("NaN", "NGN"),
    ("Infinity", "NGN"),
    (" 10", "NGN"),
    ("10.001", "NGN"),
    ("1.5", "JPY"),
    ("1000000000000000.00", "NGN"),
    ("99999999999999999999", "NGN"),
    (10, "NGN"),
    (10.5, "NGN"),
    ("", "NGN"),
]


@pytest.mark.parametrize(("amount", "currency"), BAD_AMOUNTS, ids=[repr(a) for a, _ in BAD_AMOUNTS])
def test_bad_amounts_are_refused_with_422_and_nothing_moves(wallet, amount, currency):
    alice, a = wallet(currency, "100")
    _, b = wallet(currency)
    before = state(alice, a)
    r = send(alice, {"from_account_id": a, "to_account_id": b, "amount": amount, "currency": currency})
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"][0]["field"] == "amount"
    assert state(alice, a) == before


@pytest.mark.parametrize("currency", ["XYZ", "ngn", "", 566])
def test_unknown_currencies_are_refused_with_422(wallet, currency):
    alice, a = wallet("NGN", "100")
    _, b = wallet("NGN")
    before = state(alice, a)
    assert_problem(
        send(alice, {"from_account_id": a, "to_account_id": b, "amount": "1.00", "currency": currency}),
        422,
        "validation_error",
    )
    assert state(alice, a) == before


def test_a_currency_that_does_not_match_the_accounts_is_refused(wallet):
    alice, a = wallet("NGN", "100")
    _, b = wallet("NGN")
    _, usd = wallet("USD")
    before = state(alice, a)
    problem = assert_problem(
        send(alice, {"from_account_id": a, "to_account_id": b, "amount": "1.00", "currency": "USD"}),
        422,
        "validation_error",
    )
    assert "holds NGN, not USD" in problem["detail"]
    # Someone else's account: refused without saying what currency it holds.
    foreign = assert_problem(
        send(alice, {"from_account_id": a, "to_account_id": usd, "amount": "1.00", "currency": "NGN"}),
        409,
        "conflict",
    )
    assert foreign["detail"] == f"account {usd} cannot receive this transfer"
    assert state(alice, a) == before


def test_sending_to_the_same_account_is_refused(wallet):
    alice, a = wallet("NGN", "100")
    before = state(alice, a)
    assert_problem(
        send(alice, {"from_account_id": a, "to_account_id": a, "amount": "1.00", "currency": "NGN"}),
        422,
        "validation_error",
    )
    assert state(alice, a) == before


def test_insufficient_funds_is_409_with_its_code(wallet):
    alice, a = wallet("NGN", "10.00")
    bob, b = wallet("NGN")
    before = state(alice, a)
    assert_problem(
        send(alice, {"from_account_id": a, "to_account_id": b, "amount": "10.01", "currency": "NGN"}),
        409,
        "insufficient_funds",
    )
    assert state(alice, a) == before
    assert state(bob, b)[0]["posted"]["amount"] == "0.00"


def test_frozen_and_closed_accounts_are_refused_with_409(wallet, admin):
    alice, a = wallet("NGN", "100")
    bob, b = wallet("NGN", "1")
    assert admin.post(f"/v1/admin/accounts/{b}/freeze", json={"reason": "review"}).status_code == 200
    before = state(alice, a)
    problem = assert_problem(
        send(alice, {"from_account_id": a, "to_account_id": b, "amount": "1.00", "currency": "NGN"}), 409, "conflict"
    )
    assert problem["detail"] == f"account {b} cannot receive this transfer"  # not bob's status
    own = assert_problem(
        send(bob, {"from_account_id": b, "to_account_id": a, "amount": "1.00", "currency": "NGN"}), 409, "conflict"
    )
    assert "frozen" in own["detail"]  # bob's own account: the detail stays
    assert admin.post(f"/v1/admin/accounts/{b}/unfreeze").status_code == 200
    _, c = wallet("NGN")
    transaction(lambda cur: ledger.close(cur, c, actor=TEST_ADMIN, reason="closed by the customer"))
    assert_problem(
        send(alice, {"from_account_id": a, "to_account_id": c, "amount": "1.00", "currency": "NGN"}), 409, "conflict"
    )
    assert state(alice, a) == before


def test_someone_elses_account_is_404_and_never_its_data(wallet):
    alice, a = wallet("NGN", "100")
    mallory, m = wallet("NGN")
    before = state(alice, a)
    problem = assert_problem(
        send(mallory, {"from_account_id": a, "to_account_id": m, "amount": "1.00", "currency": "NGN"}), 404, "not_found"
    )
    assert "100.00" not in problem["detail"] and "available" not in problem["detail"]
    assert_problem(
        send(alice, {"from_account_id": a, "to_account_id": str(uuid.uuid4()), "amount": "1.00", "currency": "NGN"}),
        404,
        "not_found",
    )
    assert state(alice, a) == before


def test_a_system_account_cannot_be_paid_by_a_user(wallet):
    alice, a = wallet("NGN", "100")
    fees = transaction(lambda cur: ledger.system_account(cur, "fees_revenue", "NGN"))
    assert_problem(
        send(alice, {"from_account_id": a, "to_account_id": str(fees.id), "amount": "1.00", "currency": "NGN"}),
        404,
        "not_found",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"surprise": True},
        {"amount_minor": 100},
        {"from_account_id": "not-a-uuid"},
    ],
)
def test_unknown_fields_and_malformed_ids_are_refused_with_422(wallet, body):
    alice, a = wallet("NGN", "100")
    _, b = wallet("NGN")
    before = state(alice, a)
    full = {"from_account_id": a, "to_account_id": b, "amount": "1.00", "currency": "NGN", **body}
    assert_problem(send(alice, full), 422, "validation_error")
    assert state(alice, a) == before


def test_missing_or_malformed_idempotency_key_is_400(wallet):
    alice, a = wallet("NGN", "100")
    _, b = wallet("NGN")
    body = {"from_account_id": a, "to_account_id": b, "amount": "1.00", "currency": "NGN"}
    before = state(alice, a)
    assert_problem(send(alice, body, key=None), 400, "idempotency_key_required")
    for bad in ["abc", str(uuid.uuid1()), "00000000-0000-0000-0000-000000000000", str(uuid.uuid4()) + "x"]:
        assert_problem(send(alice, body, key=bad), 400, "idempotency_key_invalid")
    assert state(alice, a) == before


def test_a_retry_with_the_same_key_replays_and_moves_nothing(wallet):
    alice, a = wallet("NGN", "100")
    _, b = wallet("NGN")
    key = str(uuid.uuid4())
    body = {"from_account_id": a, "to_account_id": b, "amount": "30.00", "currency": "NGN"}
    first = send(alice, body, key=key)
    again = send(alice, {"currency": "NGN", "amount": "30.00", "to_account_id": b, "from_account_id": a}, key=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.text == first.text
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["posted"]["amount"] == "70.00"


def test_the_same_key_with_another_body_is_422_reused(wallet):
    alice, a = wallet("NGN", "100")
    _, b = wallet("NGN")
    key = str(uuid.uuid4())
    assert (
        send(
            alice, {"from_account_id": a, "to_account_id": b, "amount": "1.00", "currency": "NGN"}, key=key
        ).status_code
        == 201
    )
    reused = send(alice, {"from_account_id": a, "to_account_id": b, "amount": "2.00", "currency": "NGN"}, key=key)
    assert_problem(reused, 422, "idempotency_key_reused")
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["posted"]["amount"] == "99.00"


def test_a_refusal_is_replayed_for_its_key_even_after_funds_arrive(wallet, admin):
    alice, a = wallet("NGN", "5")
    _, b = wallet("NGN")
    key = str(uuid.uuid4())
    body = {"from_account_id": a, "to_account_id": b, "amount": "10.00", "currency": "NGN"}
    first = send(alice, body, key=key)
    assert_problem(first, 409, "insufficient_funds")
    admin.post(
        "/v1/admin/adjustments",
        idempotency_key=True,
        json={"account_id": a, "amount": "100", "currency": "NGN", "direction": "credit", "reason": "top up"},
    )
    replay = send(alice, body, key=key)
    assert (replay.status_code, replay.text, replay.headers["Idempotent-Replayed"]) == (409, first.text, "true")
    assert send(alice, body).status_code == 201  # a new key is a new operation


def test_twenty_identical_requests_at_once_make_one_transfer(wallet):
    alice, a = wallet("NGN", "100")
    _, b = wallet("NGN")
    key = str(uuid.uuid4())
    body = {"from_account_id": a, "to_account_id": b, "amount": "9.00", "currency": "NGN"}
    barrier, responses = threading.Barrier(20), [None] * 20

    def go(i):
        from tests.e2e.conftest import Client

        client = Client(alice.base_url, alice.token)
        barrier.wait(timeout=30)
        responses[i] = send(client, body, key=key)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["posted"]["amount"] == "91.00"


def test_a_failed_transfer_is_audited_in_one_row_with_what_was_asked_and_why_not(wallet, owner_conn):
    alice, a = wallet("NGN", "1")
    _, b = wallet("NGN")
    description = f"audit-{uuid.uuid4().hex[:8]}"
    send(
        alice,
        {"from_account_id": a, "to_account_id": b, "amount": "2.00", "currency": "NGN", "description": description},
    )
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT action, metadata FROM audit_log WHERE metadata->'request'->>'description' = %s ORDER BY occurred_at",
            (description,),
        )
        rows = cur.fetchall()
    assert [r[0] for r in rows] == ["transfer.failed"]
    assert rows[0][1]["error"]["code"] == "insufficient_funds"


def test_a_crash_is_a_500_that_stores_nothing_and_is_audited(wallet, owner_conn):
    from tests.faults import posting_fault

    alice, a = wallet("NGN", "50")
    _, b = wallet("NGN")
    key, description = str(uuid.uuid4()), f"crash-{uuid.uuid4().hex[:8]}"
    body = {"from_account_id": a, "to_account_id": b, "amount": "5.00", "currency": "NGN", "description": description}

    with posting_fault(owner_conn, description):  # the database fails mid-posting, once
        crashed = send(alice, body, key=key)
        problem = assert_problem(crashed, 500, "internal_error")
        assert "secret" not in crashed.text and "Traceback" not in crashed.text
        assert problem["detail"]
        assert alice.get(f"/v1/accounts/{a}").json()["balance"]["posted"]["amount"] == "50.00"
        with owner_conn.cursor() as cur:
            cur.execute(
                "SELECT action, metadata->'error'->>'status' FROM audit_log"
                " WHERE metadata->'request'->>'description' = %s ORDER BY occurred_at",
                (description,),
            )
            assert cur.fetchall() == [("transfer.failed", "500")]
        retry = send(alice, body, key=key)  # the key was rolled back with the money: it runs now

    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["posted"]["amount"] == "45.00"
