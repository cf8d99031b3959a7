"""Payout accounts over HTTP (issue 19, part P): added through the gateway's account-name
enquiry (the fake gateway, in each provider's wire format), sealed, masked in every
answer, audit row and log line; listed and removed by their owner only; withdrawals to
them, with the cooling-off limit checked in the money statement; a payout to one reads
the number sealed in the payout account's row."""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from ledgerline import outbox
from ledgerline.local import workers
from ledgerline.local.fake_wire.common import account_name

NUMBER = "0123456789"
BANK = "058"


def add(client, number: str = NUMBER, bank: str = BANK, **extra: Any):
    return client.post("/v1/payout-accounts", json={"bank_code": bank, "account_number": number, **extra})


def added(client, number: str = NUMBER, bank: str = BANK, **extra: Any) -> dict[str, Any]:
    r = add(client, number, bank, **extra)
    assert r.status_code == 201, r.text
    return dict(r.json())


def rows(owner_conn, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with owner_conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def live(owner_conn, user_id: str) -> int:
    return int(rows(owner_conn, "SELECT count(*) FROM payout_accounts WHERE user_id = %s AND removed_at IS NULL",
                    user_id)[0][0])  # fmt: skip


def me(client) -> str:
    return str(client.get("/v1/me").json()["id"])


def withdraw(client, account_id: str, payout_account_id: str, amount: str, currency: str = "NGN", **extra: Any):
    return client.post("/v1/withdrawals", idempotency_key=True, json={
        "account_id": account_id, "amount": amount, "currency": currency, "payout_account_id": payout_account_id,
        **extra})  # fmt: skip


def balance(client, account_id: str) -> dict[str, Decimal]:
    b = client.get(f"/v1/accounts/{account_id}").json()["balance"]
    return {k: Decimal(b[k]["amount"]) for k in ("posted", "available")}


def wait_for_delivery(server: Any, provider: str, reference: str, timeout: float = 15.0) -> None:
    """Until the fake's payout webhook about ``reference`` reached the API."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(f'"{reference}"' in d["webhook"]["body"] and d.get("delivered_status") is not None
               for d in list(server.deliveries[provider])):  # fmt: skip
            return
        time.sleep(0.05)
    raise AssertionError(f"no {provider} webhook about {reference} within {timeout}s")


def backdate(owner_conn, payout_account_id: str, hours: int) -> None:
    """As if the account had been added ``hours`` ago (the owner may; the app may not)."""
    rows(owner_conn, "UPDATE payout_accounts SET created_at = created_at - make_interval(hours => %s) WHERE id = %s "
                     "RETURNING id", hours, payout_account_id)  # fmt: skip


@pytest.fixture
def fake(fake_server):
    from ledgerline.local.fake_gateway import Misbehaviour

    yield fake_server
    for p in list(fake_server.misbehaviour):
        fake_server.misbehaviour[p] = Misbehaviour()


@pytest.fixture
def captured_logs():
    """Every line the service logger writes, at DEBUG, while the test runs."""
    from ledgerline.observability import logger

    buffer = io.StringIO()
    handler = logger.logger_handler
    previous_stream = handler.setStream(buffer)
    previous_level = logger.log_level
    logger.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        logger.setLevel(previous_level)
        handler.setStream(previous_stream)


# ------------------------------------------------------------------------------ adding


@pytest.mark.parametrize("provider", ["paystack", "flutterwave"])
def test_an_account_is_added_with_the_banks_name_and_shown_masked(person, fake, owner_conn, provider):
    client = person()
    number = f"01{uuid.uuid4().int % 10**8:08d}"

    body = added(client, number, provider=provider)

    assert body["account_number"] == f"****{number[-4:]}" and body["bank_code"] == BANK
    assert body["account_name"] == account_name(BANK, number)  # the bank's, as the enquiry gave it
    assert body["provider"] == provider and body["created_at"]
    assert client.get("/v1/payout-accounts").json() == {"items": [body], "next_cursor": None}
    [(ciphertext, last4)] = rows(owner_conn, "SELECT account_number_ciphertext, account_number_last4 "
                                             "FROM payout_accounts WHERE id = %s", body["id"])  # fmt: skip
    assert last4 == number[-4:] and number.encode() not in bytes(ciphertext)
    assert any("resolve" in r for r in fake.requests[provider])  # the enquiry was made


def test_the_plaintext_number_is_in_no_audit_row_and_no_log_line(person, fake, owner_conn, captured_logs):
    client = person()
    number = f"02{uuid.uuid4().int % 10**8:08d}"
    body = added(client, number)
    assert client.delete(f"/v1/payout-accounts/{body['id']}").status_code == 204

    trail = rows(owner_conn, "SELECT action, payload_before::text, payload_after::text, metadata::text FROM audit_log "
                             "WHERE resource_id = %s ORDER BY occurred_at", body["id"])  # fmt: skip

    assert [t[0] for t in trail] == ["payout_account.added", "payout_account.removed"]
    assert all(number not in (t[1] or "") + (t[2] or "") + (t[3] or "") for t in trail)
    assert f"****{number[-4:]}" in (trail[0][2] or "")
    assert number not in captured_logs.getvalue()
    assert rows(owner_conn, "SELECT count(*) FROM audit_log WHERE payload_after::text LIKE %s "
                            "OR metadata::text LIKE %s", f"%{number}%", f"%{number}%") == [(0,)]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bank_code": BANK, "account_number": "0000000000"}, "account_number"),  # the bank knows no such account
        ({"bank_code": BANK, "account_number": "12345678"}, "account_number"),  # not a NUBAN: unresolvable
        ({"bank_code": "ZZ", "account_number": NUMBER}, "account_number"),  # no such bank
        ({"bank_code": BANK, "account_number": NUMBER, "provider": "stripe"}, "provider"),  # no enquiry
        ({"bank_code": BANK, "account_number": "01234-6789"}, "account_number"),
        ({"bank_code": BANK, "account_number": NUMBER, "account_name": "Mallory"}, "account_name"),  # never ours
        ({"bank_code": BANK}, "account_number"),
        ({"bank_code": BANK, "account_number": 123456789}, "account_number"),
    ],
)
def test_what_cannot_be_resolved_is_a_422_naming_the_field_and_stores_nothing(person, fake, owner_conn, body, field):
    client = person()

    r = client.post("/v1/payout-accounts", json=body)

    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert any(field in e["field"] for e in r.json()["errors"]), r.json()
    assert live(owner_conn, me(client)) == 0


def test_a_gateway_that_does_not_answer_is_a_503_and_stores_nothing(person, fake, owner_conn):
    client = person()
    fake.misbehaviour["paystack"].unavailable = 10

    r = add(client)

    assert r.status_code == 503, r.text
    assert r.json()["code"] == "gateway_unavailable" and r.headers.get("Retry-After")
    assert live(owner_conn, me(client)) == 0


def test_the_same_account_twice_is_a_409_and_another_user_may_add_it_too(person, fake):
    alice, bob = person(), person()
    first = added(alice)

    again = add(alice)

    assert again.status_code == 409 and again.json()["code"] == "conflict", again.text
    assert [a["id"] for a in alice.get("/v1/payout-accounts").json()["items"]] == [first["id"]]
    assert added(bob)["id"] != first["id"]
    assert added(alice, bank="044")["id"] != first["id"]  # the same number at another bank is another account


def test_two_adds_of_the_same_number_at_once_store_one(person, fake, owner_conn):
    client = person()
    owner = me(client)
    barrier = threading.Barrier(6)
    answers: list[int] = []

    def one() -> None:
        barrier.wait()
        answers.append(add(client).status_code)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(answers) == [201] + [409] * 5, answers
    assert live(owner_conn, owner) == 1
    assert rows(owner_conn, "SELECT count(*) FROM audit_log WHERE action = 'payout_account.added' AND actor_id = %s",
                owner) == [(1,)]  # fmt: skip


def test_an_add_that_fails_midway_leaves_no_trace(person, fake, owner_conn):
    """The row is written, then its audit row fails: the transaction takes both back."""
    client = person()
    owner = me(client)
    name = f"test_fault_{uuid.uuid4().hex[:8]}"
    rows(owner_conn, f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.action = 'payout_account.added' AND NEW.actor_id = '{owner}'::uuid THEN
            RAISE EXCEPTION 'simulated crash mid-add';
          END IF;
          RETURN NEW;
        END $$; SELECT 1""")  # fmt: skip
    rows(
        owner_conn, f"CREATE TRIGGER {name} AFTER INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION {name}(); SELECT 1"
    )
    try:
        r = add(client)
    finally:
        rows(owner_conn, f"DROP TRIGGER {name} ON audit_log; DROP FUNCTION {name}(); SELECT 1")

    assert r.status_code == 500 and r.json()["code"] == "internal_error", r.text
    assert "simulated" not in r.text
    assert rows(owner_conn, "SELECT count(*) FROM payout_accounts WHERE user_id = %s", owner) == [(0,)]
    assert added(client)["account_number"] == "****6789"  # and it works again


# ------------------------------------------------------------------------------ listing and removing


def test_removing_is_soft_idempotent_and_only_the_owners(person, fake, owner_conn):
    alice, mallory = person(), person()
    a = added(alice)
    other = added(alice, bank="044")

    assert mallory.delete(f"/v1/payout-accounts/{a['id']}").status_code == 404
    assert mallory.get("/v1/payout-accounts").json()["items"] == []
    assert alice.delete(f"/v1/payout-accounts/{a['id']}").status_code == 204
    assert alice.delete(f"/v1/payout-accounts/{a['id']}").status_code == 204  # again: nothing changes
    assert alice.delete(f"/v1/payout-accounts/{uuid.uuid4()}").status_code == 404
    assert alice.delete("/v1/payout-accounts/not-an-id").status_code in (404, 422)

    assert [x["id"] for x in alice.get("/v1/payout-accounts").json()["items"]] == [other["id"]]
    assert rows(owner_conn, "SELECT removed_at IS NOT NULL FROM payout_accounts WHERE id = %s", a["id"]) == [(True,)]
    assert rows(owner_conn, "SELECT count(*) FROM audit_log WHERE action = 'payout_account.removed' "
                            "AND resource_id = %s", a["id"]) == [(1,)]  # fmt: skip
    assert added(alice)["id"] != a["id"]  # a removed account may be added again


def test_the_list_pages_newest_first(person, fake):
    client = person()
    made = [added(client, bank=bank)["id"] for bank in ("044", "057", "058")]

    first = client.get("/v1/payout-accounts?limit=2").json()
    second = client.get(f"/v1/payout-accounts?limit=2&cursor={first['next_cursor']}").json()

    assert [a["id"] for a in first["items"] + second["items"]] == made[::-1]
    assert second["next_cursor"] is None
    assert client.get("/v1/payout-accounts?cursor=garbage").status_code == 422


# ------------------------------------------------------------------------------ withdrawals to them


def test_a_new_account_cannot_receive_above_the_cooling_off_limit(person, wallet, fake, owner_conn):
    client, account = wallet("NGN", "100000.00")
    pa = added(client)

    refused = withdraw(client, account, pa["id"], "50000.01")

    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "payout_account_cooling_off" and refused.json()["cooling_off_until"]
    assert balance(client, account) == {"posted": Decimal("100000.00"), "available": Decimal("100000.00")}
    ok = withdraw(client, account, pa["id"], "50000.00")  # at the limit: allowed
    assert ok.status_code == 201, ok.text
    body = ok.json()
    assert body["payout_account_id"] == pa["id"] and body["provider"] == "paystack"
    assert body["destination"] == {"bank_code": BANK, "account_number": "****6789",
                                   "account_name": pa["account_name"]}  # fmt: skip
    assert balance(client, account)["available"] == Decimal("50000.00")
    [(ciphertext,)] = rows(owner_conn, "SELECT account_number_ciphertext FROM withdrawals WHERE id = %s", body["id"])
    assert ciphertext is None  # sealed once, in the payout account's row

    backdate(owner_conn, pa["id"], 25)
    later = withdraw(client, account, pa["id"], "50000.00")
    assert later.status_code == 201, later.text


def test_the_cooling_off_is_per_currency(person, wallet, fake):
    client, account = wallet("USD", "2000.00")
    pa = added(client)

    assert withdraw(client, account, pa["id"], "500.01", "USD").json()["code"] == "payout_account_cooling_off"
    assert withdraw(client, account, pa["id"], "500.00", "USD").status_code == 201


def test_another_users_or_a_removed_payout_account_is_404_and_holds_nothing(person, wallet, fake):
    alice, a_account = wallet("NGN", "1000.00")
    mallory, m_account = wallet("NGN", "1000.00")
    alices = added(alice)
    removed = added(alice, bank="044")
    assert alice.delete(f"/v1/payout-accounts/{removed['id']}").status_code == 204

    for client, account, target in ((mallory, m_account, alices["id"]), (alice, a_account, removed["id"]),
                                    (alice, a_account, str(uuid.uuid4()))):  # fmt: skip
        r = withdraw(client, account, target, "10.00")
        assert r.status_code == 404 and r.json()["code"] == "not_found", r.text
        assert alices["account_name"] not in r.text
        assert balance(client, account)["available"] == Decimal("1000.00")


@pytest.mark.parametrize(
    "extra",
    [
        {"destination": {"bank_code": BANK, "account_number": NUMBER, "account_name": "Ada"}},  # both
        {"provider": "flutterwave"},  # a payout account's gateway is its own
    ],
)
def test_a_withdrawal_names_one_destination(person, wallet, fake, extra):
    client, account = wallet("NGN", "100.00")
    pa = added(client)

    r = withdraw(client, account, pa["id"], "10.00", **extra)

    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    assert balance(client, account)["available"] == Decimal("100.00")


def race_withdrawal_and_removal(client, account: str, payout_account_id: str) -> dict[str, int]:
    barrier = threading.Barrier(2)
    out: dict[str, int] = {}

    def take() -> None:
        barrier.wait()
        out["withdraw"] = withdraw(client, account, payout_account_id, "10.00").status_code

    def remove() -> None:
        barrier.wait()
        out["remove"] = client.delete(f"/v1/payout-accounts/{payout_account_id}").status_code

    threads = [threading.Thread(target=take), threading.Thread(target=remove)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_a_withdrawal_racing_the_removal_of_its_account_either_lands_or_is_404(person, wallet, fake):
    for _ in range(3):
        client, account = wallet("NGN", "100.00")
        pa = added(client)

        out = race_withdrawal_and_removal(client, account, pa["id"])

        assert out["remove"] == 204 and out["withdraw"] in (201, 404), out
        held = Decimal("10.00") if out["withdraw"] == 201 else Decimal(0)
        assert balance(client, account)["available"] == Decimal("100.00") - held


def test_a_withdrawal_that_fails_midway_leaves_no_hold_and_no_key(person, wallet, fake, owner_conn):
    client, account = wallet("NGN", "100.00")
    pa = added(client)
    name = f"test_fault_{uuid.uuid4().hex[:8]}"
    rows(owner_conn, f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.payout_account_id = '{pa["id"]}'::uuid THEN RAISE EXCEPTION 'simulated crash mid-withdrawal'; END IF;
          RETURN NEW;
        END $$; SELECT 1""")  # fmt: skip
    rows(owner_conn, f"CREATE TRIGGER {name} AFTER INSERT ON withdrawals FOR EACH ROW EXECUTE FUNCTION {name}(); "
                     "SELECT 1")  # fmt: skip
    key = str(uuid.uuid4())
    body = {"account_id": account, "amount": "10.00", "currency": "NGN", "payout_account_id": pa["id"]}
    try:
        crashed = client.post("/v1/withdrawals", idempotency_key=key, json=body)
    finally:
        rows(owner_conn, f"DROP TRIGGER {name} ON withdrawals; DROP FUNCTION {name}(); SELECT 1")

    assert crashed.status_code == 500, crashed.text
    assert balance(client, account) == {"posted": Decimal("100.00"), "available": Decimal("100.00")}
    assert rows(owner_conn, "SELECT count(*) FROM withdrawals WHERE payout_account_id = %s", pa["id"]) == [(0,)]
    retried = client.post("/v1/withdrawals", idempotency_key=key, json=body)  # the key was not kept: it runs
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers, retried.text
    replayed = client.post("/v1/withdrawals", idempotency_key=key, json=body)
    assert replayed.json() == retried.json() and replayed.headers.get("Idempotent-Replayed") == "true"


@pytest.mark.parametrize(("provider", "currency"), [("paystack", "NGN"), ("flutterwave", "NGN")])
def test_a_withdrawal_to_a_payout_account_is_paid_to_its_number(
    person, wallet, admin, fake, owner_conn, provider, currency
):
    client, account = wallet(currency, "500.00")
    number = f"03{uuid.uuid4().int % 10**8:08d}"
    pa = added(client, number, provider=provider)
    w = withdraw(client, account, pa["id"], "120.00", currency)
    assert w.status_code == 201, w.text
    wid = w.json()["id"]
    assert client.delete(f"/v1/payout-accounts/{pa['id']}").status_code == 204  # removed after: still paid to it

    assert admin.post(f"/v1/admin/withdrawals/{wid}/approve", idempotency_key=True).status_code == 200
    outbox.relay(time_budget=10)
    assert workers.deliver_pending("gateway-payouts") >= 1
    wait_for_delivery(fake, provider, wid)
    workers.deliver_pending("gateway-webhooks")

    paid = client.get(f"/v1/withdrawals/{wid}").json()
    assert paid["status"] == "paid", paid
    assert balance(client, account) == {"posted": Decimal("380.00"), "available": Decimal("380.00")}
    [sent] = [t for t in fake.transfers.values() if t.reference == wid]
    assert (sent.account_number, sent.bank_code, sent.amount) == (number, BANK, Decimal("120.00"))
    check = admin.get("/v1/admin/ledger/check").json()
    assert check["ok"], check["findings"]
