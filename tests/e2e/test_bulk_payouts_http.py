"""Bulk payouts over HTTP (issue 19, part P): a merchant's wallet paid out to many of its
payout accounts, each item a withdrawal with its hold, all or nothing; administrators
approve above a total (two different ones above the two-person limit, never the
requester); each item's payout, webhook and settlement are the withdrawal's, so a
failing item's hold is voided while the others are paid. The ledger check is clean
after each."""

from __future__ import annotations

import os
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import pyotp
import pytest

from ledgerline import outbox
from ledgerline.local import workers

PAYOUTS, WEBHOOKS = "gateway-payouts", "gateway-webhooks"


@pytest.fixture(scope="module")
def fake(fake_server):
    return fake_server


@pytest.fixture
def behaving(fake):
    from ledgerline.local.fake_gateway import Misbehaviour

    workers.deliver_pending(PAYOUTS)  # what earlier tests left queued
    yield fake
    # What this test approved and did not pay is submitted now, held at the gateway (no
    # webhook): left queued, a later test's worker would pay it, and a thousand webhooks at
    # once would crowd that test's own requests past their timeouts.
    for p in list(fake.misbehaviour):
        fake.misbehaviour[p] = Misbehaviour(payout="hold")
    workers.deliver_pending(PAYOUTS)
    for p in list(fake.misbehaviour):
        fake.misbehaviour[p] = Misbehaviour()


def rows(owner_conn, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with owner_conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


@pytest.fixture
def merchant(person, wallet, owner_conn):
    """merchant(currency, funded, n) -> (client, wallet id, [payout account ids]): n payout
    accounts added through the route, past their cooling-off."""

    def make(currency: str = "NGN", funded: str = "10000.00", n: int = 3, provider: str = "paystack"):
        client = person("merchant")
        _, account = wallet(currency, funded, client=client)
        ids = []
        for i in range(n):
            r = client.post("/v1/payout-accounts", json={"bank_code": "058", "account_number": f"01234{i:05d}",
                                                         "provider": provider})  # fmt: skip
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        rows(owner_conn, "UPDATE payout_accounts SET created_at = created_at - interval '2 days' WHERE id = ANY(%s::uuid[]) "
                         "RETURNING id", ids)  # fmt: skip
        return client, account, ids

    return make


def enrol(client) -> list[str]:
    """Enrol the client's user in TOTP (a total above the withdrawal step-up needs the second
    factor); its recovery codes, one per request (a TOTP code is single-use per step)."""
    setup = client.post("/v1/auth/otp/setup").json()
    assert client.post("/v1/auth/otp/verify", json={"otp": pyotp.TOTP(setup["secret"]).now()}).status_code == 200
    return list(setup["recovery_codes"])


def bulk(client, account: str, items: list[tuple[str, str]], currency: str = "NGN", key: Any = True, **extra: Any):
    body = {"account_id": account, "currency": currency,
            "items": [{"payout_account_id": p, "amount": a, "narration": f"salary {i}"} for i, (p, a) in enumerate(items)],
            **extra}  # fmt: skip
    return client.post("/v1/payouts/bulk", idempotency_key=key, json=body)


def balance(client, account_id: str) -> dict[str, Decimal]:
    b = client.get(f"/v1/accounts/{account_id}").json()["balance"]
    return {k: Decimal(b[k]["amount"]) for k in ("posted", "available")}


def ledger_ok(admin) -> None:
    check = admin.get("/v1/admin/ledger/check").json()
    assert check["ok"], check["findings"]


def nothing_of(owner_conn, account: str) -> None:
    assert rows(owner_conn, "SELECT count(*) FROM holds WHERE account_id = %s", account) == [(0,)]
    assert rows(owner_conn, "SELECT count(*) FROM withdrawals WHERE account_id = %s", account) == [(0,)]
    assert rows(owner_conn, "SELECT count(*) FROM bulk_payouts WHERE account_id = %s", account) == [(0,)]


@pytest.fixture(scope="module")
def second_admin(api, make_user):
    """Another administrator (the two-person rule), logged in with the second factor."""
    from tests.e2e.conftest import Client

    client = Client(api)
    user = make_user("admin")
    setup = client.post("/v1/auth/otp/setup", token=user["token"]).json()
    client.post("/v1/auth/otp/verify", token=user["token"], json={"otp": pyotp.TOTP(setup["secret"]).now()})
    login = client.post(
        "/v1/auth/login", json={"email": user["email"], "password": user["password"], "otp": setup["recovery_codes"][0]}
    )
    assert login.status_code == 200, login.text
    return client.as_user(login.json()["access_token"])


# ------------------------------------------------------------------------------ requests


def test_a_small_bulk_payout_holds_each_item_and_queues_its_payout_at_once(merchant, admin, behaving, owner_conn):
    client, account, payees = merchant()

    r = bulk(client, account, [(payees[0], "100.00"), (payees[1], "250.50"), (payees[2], "49.50")])

    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "approved" and body["approvals_required"] == 0 and body["item_count"] == 3
    assert body["amount"] == {"amount": "400.00", "currency": "NGN"}
    assert [(i["index"], i["status"], i["payout_account_id"]) for i in body["items"]] == [
        (0, "approved", payees[0]), (1, "approved", payees[1]), (2, "approved", payees[2])]  # fmt: skip
    assert all(i["withdrawal_id"] for i in body["items"])
    item = client.get(f"/v1/withdrawals/{body['items'][1]['withdrawal_id']}").json()
    assert (item["bulk_payout_id"], item["payout_account_id"], item["status"]) == (body["id"], payees[1], "approved")
    assert item["destination"]["account_number"] == "****0001"
    # held, not posted, until each payout answers (its hold pinned: it no longer expires)
    assert balance(client, account) == {"posted": Decimal("10000.00"), "available": Decimal("9600.00")}
    assert rows(owner_conn, "SELECT h.status, isfinite(h.expires_at) FROM holds h JOIN withdrawals w ON w.hold_id = h.id "
                            "WHERE w.bulk_payout_id = %s GROUP BY 1, 2", body["id"]) == [("active", False)]  # fmt: skip
    assert client.get(f"/v1/payouts/bulk/{body['id']}").json() == body
    trail = rows(owner_conn, "SELECT action, count(*) FROM audit_log WHERE metadata->>'bulk_payout_id' = %s "
                             "OR resource_id = %s GROUP BY action ORDER BY action", body["id"], body["id"])  # fmt: skip
    assert trail == [("bulk_payout.requested", 1), ("withdrawal.approved", 3), ("withdrawal.requested", 3)]
    [(after,)] = rows(owner_conn, "SELECT payload_after FROM audit_log WHERE action = 'bulk_payout.requested' "
                                  "AND resource_id = %s", body["id"])  # fmt: skip
    assert after["bulk_payout"]["item_count"] == 3 and after["bulk_payout"]["total"]["amount"] == "400.00"
    ledger_ok(admin)


def test_a_provider_without_a_bulk_api_pays_each_item_by_its_own_request(person, wallet, admin, behaving, owner_conn):
    """Stripe has no bulk transfer API (nor an account-name enquiry: its payout accounts are
    added here as the domain stores a resolved one): one payout request per item, each
    settled by its own webhook, a failed one's hold voided."""
    from ledgerline.audit import Actor
    from ledgerline.db import transaction
    from ledgerline.payments import payout_accounts

    fake = behaving
    fake.misbehaviour["stripe"].payout = "hold"
    client = person("merchant")
    _, account = wallet("USD", "1000.00", client=client)
    owner = uuid.UUID(client.get("/v1/me").json()["id"])
    actor = Actor(id=owner, type="merchant", ip="127.0.0.1", user_agent="tests")
    payees = [str(transaction(lambda cur, n=n: payout_accounts.add(cur, owner, payout_accounts.Resolved(
                  "stripe", "110000000", f"00012345678{n}", f"Payee {n}"), actor)).id) for n in range(2)]  # fmt: skip
    rows(owner_conn, "UPDATE payout_accounts SET created_at = created_at - interval '2 days' WHERE id = ANY(%s::uuid[]) "
                     "RETURNING id", payees)  # fmt: skip
    r = bulk(client, account, [(payees[0], "10.00"), (payees[1], "20.00")], currency="USD")
    assert r.status_code == 201 and r.json()["status"] == "approved", r.text
    items = r.json()["items"]
    calls = len(fake.requests["stripe"])

    outbox.relay(time_budget=10)
    assert workers.deliver_pending(PAYOUTS) >= 1

    made = fake.requests["stripe"][calls:]
    assert len(made) == 2 and len(set(made)) == 1, made  # one request per item, the same route
    for item, outcome in zip(items, ("success", "failed"), strict=True):
        fake.settle("stripe", item["withdrawal_id"], outcome)
    workers.deliver_pending(WEBHOOKS)
    now = client.get(f"/v1/payouts/bulk/{r.json()['id']}").json()
    assert [i["status"] for i in now["items"]] == ["paid", "failed"]
    assert balance(client, account) == {"posted": Decimal("990.00"), "available": Decimal("990.00")}
    holds = rows(owner_conn, "SELECT h.status FROM withdrawals w JOIN holds h ON h.id = w.hold_id "
                             "WHERE w.bulk_payout_id = %s ORDER BY w.bulk_index", r.json()["id"])  # fmt: skip
    assert holds == [("posted",), ("voided",)]
    ledger_ok(admin)


@pytest.mark.parametrize(("provider", "bulk_path"), [("paystack", "POST /transfer/bulk"),
                                                    ("flutterwave", "POST /v3/bulk-transfers")])  # fmt: skip
def test_a_bulk_payout_with_a_failing_item_leaves_the_others_paid_and_the_failed_hold_voided(
    merchant, admin, behaving, owner_conn, provider, bulk_path
):
    fake = behaving
    fake.misbehaviour[provider].payout = "hold"  # each outcome waits for settle below
    client, account, payees = merchant(provider=provider)
    r = bulk(client, account, [(payees[0], "100.00"), (payees[1], "200.00"), (payees[2], "300.00")])
    assert r.status_code == 201, r.text
    items = r.json()["items"]
    calls = len(fake.requests[provider])

    outbox.relay(time_budget=10)
    assert workers.deliver_pending(PAYOUTS) >= 1

    # one bulk transfer request for the three (Paystack also names each recipient first)
    made = [c for c in fake.requests[provider][calls:] if "transferrecipient" not in c]
    assert made == [bulk_path], made
    sent = {t.reference: t for t in fake.transfers.values() if t.reference in {i["withdrawal_id"] for i in items}}
    assert [(sent[i["withdrawal_id"]].account_number, sent[i["withdrawal_id"]].narration) for i in items] == [
        (f"01234{n:05d}", f"salary {n}") for n in range(3)]  # fmt: skip
    assert all(client.get(f"/v1/withdrawals/{i['withdrawal_id']}").json()["submitted_at"] for i in items)
    for item, outcome in zip(items, ("success", "failed", "success"), strict=True):
        fake.settle(provider, item["withdrawal_id"], outcome)
    workers.deliver_pending(WEBHOOKS)

    now = client.get(f"/v1/payouts/bulk/{r.json()['id']}").json()
    assert [i["status"] for i in now["items"]] == ["paid", "failed", "paid"]
    assert now["items"][1]["reason"]
    assert balance(client, account) == {"posted": Decimal("9600.00"), "available": Decimal("9600.00")}
    trail = rows(owner_conn, "SELECT coalesce(payload_before::text, '') || coalesce(payload_after::text, '') "
                             "|| metadata::text FROM audit_log WHERE resource_id = ANY(%s)",
                 [r.json()["id"], *(i["withdrawal_id"] for i in items)])  # fmt: skip
    assert len(trail) >= 7 and not [t for (t,) in trail for n in range(3) if f"01234{n:05d}" in t]  # masked
    holds = rows(owner_conn, "SELECT h.status, w.reversal_transaction_id FROM withdrawals w "
                             "JOIN holds h ON h.id = w.hold_id WHERE w.id = ANY(%s::uuid[]) ORDER BY w.bulk_index",
                 [i["withdrawal_id"] for i in items])  # fmt: skip
    assert holds == [("posted", None), ("voided", None), ("posted", None)]  # the failed one's: voided, nothing posted
    ledger_ok(admin)


@pytest.mark.parametrize(
    ("bad", "status", "code", "field"),
    [
        ("another's payout account", 404, "not_found", "items.1.payout_account_id"),
        ("unknown payout account", 404, "not_found", "items.1.payout_account_id"),
        ("too many decimals", 422, "validation_error", "items.1.amount"),
        ("more than the wallet holds", 409, "insufficient_funds", None),
    ],
)
def test_one_bad_item_refuses_the_whole_bulk_payout_and_holds_nothing(
    merchant, behaving, owner_conn, bad, status, code, field
):
    client, account, payees = merchant(funded="1000.00")
    _, _, others = merchant(n=1)
    second = {"another's payout account": (others[0], "10.00"), "unknown payout account": (str(uuid.uuid4()), "10.00"),
              "too many decimals": (payees[1], "10.001"), "more than the wallet holds": (payees[1], "995.00")}[bad]  # fmt: skip

    r = bulk(client, account, [(payees[0], "10.00"), second, (payees[2], "10.00")])

    assert r.status_code == status and r.json()["code"] == code, r.text
    if field:
        assert [e["field"] for e in r.json()["errors"]] == [field]
    assert balance(client, account) == {"posted": Decimal("1000.00"), "available": Decimal("1000.00")}
    nothing_of(owner_conn, account)


def test_an_item_above_a_new_accounts_cooling_off_limit_refuses_the_bulk_payout(merchant, person, behaving, owner_conn):
    client, account, payees = merchant(funded="100000.00", n=1)
    fresh = client.post("/v1/payout-accounts", json={"bank_code": "044", "account_number": "0123499999"}).json()["id"]

    r = bulk(client, account, [(payees[0], "10.00"), (fresh, "50000.01")])

    assert r.status_code == 409 and r.json()["code"] == "payout_account_cooling_off", r.text
    assert r.json()["errors"][0]["field"] == "items.1.payout_account_id"
    nothing_of(owner_conn, account)


def test_only_merchants_send_bulk_payouts(person, wallet, behaving):
    client, account = wallet("NGN", "100.00")

    r = bulk(client, account, [(str(uuid.uuid4()), "1.00")])

    assert r.status_code == 403 and r.json()["code"] == "forbidden"


@pytest.mark.parametrize(
    "body",
    [
        {"items": []},
        {"items": [{"payout_account_id": str(uuid.uuid4()), "amount": 5}]},  # a JSON number
        {"items": [{"payout_account_id": "nope", "amount": "5.00"}]},
        {"items": [{"payout_account_id": str(uuid.uuid4()), "amount": "5.00", "narration": ""}]},
        {"items": [{"payout_account_id": str(uuid.uuid4()), "amount": "5.00", "extra": 1}]},
        {"items": [{"payout_account_id": str(uuid.uuid4()), "amount": "1.00"}] * 1001},
    ],
)
def test_a_malformed_bulk_payout_is_a_422_and_stores_nothing(merchant, behaving, owner_conn, body):
    client, account, _ = merchant(n=0)

    r = client.post("/v1/payouts/bulk", idempotency_key=True, json={"account_id": account, "currency": "NGN", **body})

    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text[:300]
    nothing_of(owner_conn, account)


def test_the_same_key_replays_the_bulk_payout_and_another_body_is_refused(merchant, behaving, owner_conn):
    client, account, payees = merchant()
    key = str(uuid.uuid4())
    first = bulk(client, account, [(payees[0], "10.00"), (payees[1], "20.00")], key=key)
    assert first.status_code == 201, first.text

    again = bulk(client, account, [(payees[0], "10.00"), (payees[1], "20.00")], key=key)
    other = bulk(client, account, [(payees[0], "11.00")], key=key)

    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert rows(owner_conn, "SELECT count(*) FROM withdrawals WHERE account_id = %s", account) == [(2,)]


def test_two_bulk_payouts_racing_for_one_wallet_hold_at_most_what_it_has(merchant, behaving, owner_conn, admin):
    client, account, payees = merchant(funded="1000.00")
    barrier = threading.Barrier(4)
    answers: list[int] = []

    def one() -> None:
        barrier.wait()
        answers.append(bulk(client, account, [(payees[0], "100.00"), (payees[1], "100.00"),
                                              (payees[2], "100.00")]).status_code)  # fmt: skip

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(answers) == [201, 201, 201, 409], answers
    assert balance(client, account)["available"] == Decimal("100.00")
    assert rows(owner_conn, "SELECT count(*) FROM withdrawals WHERE account_id = %s", account) == [(9,)]
    ledger_ok(admin)


def test_a_bulk_payout_that_crashes_midway_leaves_no_trace(merchant, behaving, owner_conn):
    client, account, payees = merchant()
    name = f"test_fault_{uuid.uuid4().hex[:8]}"
    rows(owner_conn, f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.account_id = '{account}'::uuid AND NEW.bulk_index = 2 THEN RAISE EXCEPTION 'simulated crash'; END IF;
          RETURN NEW;
        END $$; SELECT 1""")  # fmt: skip
    rows(owner_conn, f"CREATE TRIGGER {name} AFTER INSERT ON withdrawals FOR EACH ROW EXECUTE FUNCTION {name}(); "
                     "SELECT 1")  # fmt: skip
    key = str(uuid.uuid4())
    try:
        crashed = bulk(client, account, [(payees[0], "1.00"), (payees[1], "2.00"), (payees[2], "3.00")], key=key)
    finally:
        rows(owner_conn, f"DROP TRIGGER {name} ON withdrawals; DROP FUNCTION {name}(); SELECT 1")

    assert crashed.status_code == 500 and "simulated" not in crashed.text, crashed.text
    nothing_of(owner_conn, account)
    assert balance(client, account) == {"posted": Decimal("10000.00"), "available": Decimal("10000.00")}
    retried = bulk(client, account, [(payees[0], "1.00"), (payees[1], "2.00"), (payees[2], "3.00")], key=key)
    assert retried.status_code == 201, retried.text


# ------------------------------------------------------------------------------ approvals


def test_a_bulk_payout_from_a_wallet_frozen_before_its_approval_is_not_approved(merchant, admin, behaving, owner_conn):
    client, account, payees = merchant(funded="200000.00")
    r = bulk(client, account, [(payees[0], "60000.00"), (payees[1], "40000.01")], otp=enrol(client)[0])
    assert r.status_code == 201 and r.json()["status"] == "pending_approval", r.text
    frozen = admin.post(f"/v1/admin/accounts/{account}/freeze", idempotency_key=True, json={"reason": "fraud review"})
    assert frozen.status_code == 200, frozen.text

    refused = admin.post(f"/v1/admin/payouts/bulk/{r.json()['id']}/approve", idempotency_key=True)

    assert (refused.status_code, refused.json()["code"]) == (409, "conflict"), refused.text
    assert "item 0" in refused.json()["detail"] and "frozen" in refused.json()["detail"]
    now = client.get(f"/v1/payouts/bulk/{r.json()['id']}").json()
    assert now["status"] == "pending_approval" and {i["status"] for i in now["items"]} == {"requested"}
    assert rows(owner_conn, "SELECT count(*) FROM outbox WHERE queue = %s AND payload->>'bulk_payout_id' = %s",
                PAYOUTS, r.json()["id"]) == [(0,)]  # fmt: skip
    ledger_ok(admin)


def test_above_the_limit_one_administrator_approves_and_items_wait_until_then(merchant, admin, behaving, owner_conn):
    client, account, payees = merchant(funded="200000.00")
    items = [(payees[0], "50000.00"), (payees[1], "50000.00"), (payees[2], "0.01")]
    no_code = bulk(client, account, items)
    assert no_code.status_code == 401 and no_code.json()["code"] == "otp_required", no_code.text
    nothing_of(owner_conn, account)
    r = bulk(client, account, items, otp=enrol(client)[0])
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["status"], body["approvals_required"]) == ("pending_approval", 1)
    assert {i["status"] for i in body["items"]} == {"requested"}
    assert balance(client, account) == {"posted": Decimal("200000.00"), "available": Decimal("99999.99")}
    item = body["items"][0]["withdrawal_id"]
    alone = admin.post(f"/v1/admin/withdrawals/{item}/approve", idempotency_key=True)
    assert alone.status_code == 409 and alone.json()["code"] == "invalid_state_transition", alone.text
    assert rows(owner_conn, "SELECT count(*) FROM outbox WHERE queue = %s AND payload->>'withdrawal_id' = %s",
                PAYOUTS, item) == [(0,)]  # fmt: skip

    approved = admin.post(f"/v1/admin/payouts/bulk/{body['id']}/approve", idempotency_key=True)

    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["approvals"] == 1
    assert {i["status"] for i in approved.json()["items"]} == {"approved"}
    assert balance(client, account) == {"posted": Decimal("200000.00"), "available": Decimal("99999.99")}
    again = admin.post(f"/v1/admin/payouts/bulk/{body['id']}/approve", idempotency_key=True)
    assert again.status_code == 409 and again.json()["code"] == "invalid_state_transition"
    queued = rows(owner_conn, "SELECT payload FROM outbox WHERE queue = %s AND payload->>'bulk_payout_id' = %s",
                  PAYOUTS, body["id"])  # fmt: skip
    assert [q for (q,) in queued] == [{"type": "bulk_payout.approved", "bulk_payout_id": body["id"]}]  # one message
    ledger_ok(admin)


def test_above_the_two_person_limit_two_different_administrators_approve(
    merchant, admin, second_admin, behaving, owner_conn
):
    client, account, payees = merchant("USD", "60000.00", n=2)
    r = bulk(client, account, [(payees[0], "30000.00"), (payees[1], "20000.01")], currency="USD",
             otp=enrol(client)[0])  # fmt: skip
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    assert r.json()["approvals_required"] == 2

    first = admin.post(f"/v1/admin/payouts/bulk/{bid}/approve", idempotency_key=True)
    twice = admin.post(f"/v1/admin/payouts/bulk/{bid}/approve", idempotency_key=True)

    assert first.status_code == 200 and first.json()["status"] == "pending_approval", first.text
    assert first.json()["approvals"] == 1
    assert twice.status_code == 409 and twice.json()["code"] == "conflict", twice.text
    assert balance(client, account)["posted"] == Decimal("60000.00")  # nothing moved yet
    second = second_admin.post(f"/v1/admin/payouts/bulk/{bid}/approve", idempotency_key=True)
    assert second.status_code == 200 and second.json()["status"] == "approved", second.text
    assert second.json()["approvals"] == 2
    assert balance(client, account) == {"posted": Decimal("60000.00"), "available": Decimal("9999.99")}
    assert rows(owner_conn, "SELECT count(*) FROM audit_log WHERE action = 'bulk_payout.approved' AND resource_id = %s",
                bid) == [(2,)]  # fmt: skip
    ledger_ok(admin)


def test_nobody_approves_their_own_bulk_payout(merchant, behaving, owner_conn):
    """The rule is the routine's (an administrator cannot request one over HTTP: merchants
    only), so it is called here as the requester, in a transaction that is rolled back."""
    client, account, payees = merchant(funded="200000.00", n=1)
    r = bulk(client, account, [(payees[0], "100000.01")], otp=enrol(client)[0])
    assert r.status_code == 201 and r.json()["approvals_required"] == 1, r.text
    owner = client.get("/v1/me").json()["id"]

    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT bulk_payout_approve(p_bulk => %s, p_actor => jsonb_build_object('id', %s::text, 'type', 'admin'),"
            ' p_audit => \'{"action": "bulk_payout.approved", "category": "financial"}\') AS r',
            (r.json()["id"], owner),
        )
        refusal = cur.fetchone()[0]["refusal"]

    assert refusal["status"] == 403 and refusal["code"] == "forbidden"
    assert client.get(f"/v1/payouts/bulk/{r.json()['id']}").json()["status"] == "pending_approval"


def test_another_merchants_bulk_payout_is_404(merchant, behaving):
    client, account, payees = merchant(n=1)
    other, _, _ = merchant(n=0)
    bid = bulk(client, account, [(payees[0], "1.00")]).json()["id"]

    assert other.get(f"/v1/payouts/bulk/{bid}").status_code == 404
    assert client.get(f"/v1/payouts/bulk/{uuid.uuid4()}").status_code == 404


def test_velocity_counts_the_items_of_a_bulk_payout(merchant, behaving, owner_conn, monkeypatch):
    from ledgerline import config

    client, account, payees = merchant(n=1)
    monkeypatch.setenv("LEDGERLINE_VELOCITY", "20/60s")
    config.settings.cache_clear()
    try:
        over = bulk(client, account, [(payees[0], "1.00")] * 21)
        full = bulk(client, account, [(payees[0], "1.00")] * 20)
        one_more = bulk(client, account, [(payees[0], "1.00")])
    finally:
        monkeypatch.undo()  # before anything else reads the settings
        config.settings.cache_clear()

    assert over.status_code == 429 and over.json()["code"] == "rate_limited", over.text
    assert full.status_code == 201, full.text
    assert one_more.status_code == 429, one_more.text
    assert rows(owner_conn, "SELECT count(*) FROM withdrawals WHERE account_id = %s", account) == [(20,)]


def test_a_rejected_bulk_payout_voids_every_items_hold(merchant, admin, behaving, owner_conn):
    client, account, payees = merchant(funded="200000.00")
    r = bulk(client, account, [(payees[0], "60000.00"), (payees[1], "40000.01")], otp=enrol(client)[0])
    assert r.status_code == 201 and r.json()["status"] == "pending_approval", r.text
    bid = r.json()["id"]
    assert admin.post(f"/v1/admin/payouts/bulk/{bid}/reject", idempotency_key=True,
                      json={"reason": "no"}).json()["code"] == "validation_error"  # fmt: skip

    rejected = admin.post(f"/v1/admin/payouts/bulk/{bid}/reject", idempotency_key=True, json={"reason": "not payroll"})

    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected" and rejected.json()["reason"] == "not payroll"
    assert [i["status"] for i in rejected.json()["items"]] == ["rejected", "rejected"]
    assert balance(client, account) == {"posted": Decimal("200000.00"), "available": Decimal("200000.00")}
    assert rows(owner_conn, "SELECT h.status FROM withdrawals w JOIN holds h ON h.id = w.hold_id "
                            "WHERE w.bulk_payout_id = %s", bid) == [("voided",), ("voided",)]  # fmt: skip
    late = admin.post(f"/v1/admin/payouts/bulk/{bid}/approve", idempotency_key=True)
    assert late.status_code == 409 and late.json()["code"] == "invalid_state_transition"
    assert rows(owner_conn, "SELECT count(*) FROM audit_log WHERE action = 'bulk_payout.rejected' AND resource_id = %s",
                bid) == [(1,)]  # fmt: skip
    # the merchant is told once, for the whole bulk payout, right after the statement
    notices = rows(owner_conn, "SELECT payload->>'type', payload->>'message', relayed_at IS NOT NULL FROM outbox "
                               "WHERE queue = 'notifications' AND (payload->>'bulk_payout_id' = %s "
                               "OR payload->>'withdrawal_id' = ANY(%s))",
                   bid, [i["withdrawal_id"] for i in rejected.json()["items"]])  # fmt: skip
    assert [(t, relayed) for t, _, relayed in notices] == [("bulk_payout.rejected", True)]
    assert "2 items, 100000.01 NGN" in notices[0][1] and "Reason: not payroll" in notices[0][1]
    ledger_ok(admin)


def race_decisions(bid: str, approver: Any, rejecter: Any) -> dict[str, int]:
    barrier = threading.Barrier(2)
    out: dict[str, int] = {}

    def decide(who: str, client: Any, path: str, body: dict[str, Any]) -> None:
        barrier.wait()
        out[who] = client.post(f"/v1/admin/payouts/bulk/{bid}/{path}", idempotency_key=True, json=body).status_code

    threads = [threading.Thread(target=decide, args=("approve", approver, "approve", {})),
               threading.Thread(target=decide, args=("reject", rejecter, "reject", {"reason": "stop it"}))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_an_approval_racing_a_rejection_lands_one_decision(merchant, admin, second_admin, behaving, owner_conn):
    for _ in range(3):
        client, account, payees = merchant(funded="200000.00", n=2)
        r = bulk(client, account, [(payees[0], "60000.00"), (payees[1], "40000.01")], otp=enrol(client)[0])
        assert r.status_code == 201 and r.json()["approvals_required"] == 1, r.text
        bid = r.json()["id"]

        out = race_decisions(bid, admin, second_admin)

        assert sorted(out.values()) == [200, 409], out
        final = client.get(f"/v1/payouts/bulk/{bid}").json()
        expected = "approved" if out["approve"] == 200 else "rejected"
        assert final["status"] == expected and {i["status"] for i in final["items"]} == {expected}
        available = Decimal("99999.99") if expected == "approved" else Decimal("200000.00")
        assert balance(client, account) == {"posted": Decimal("200000.00"), "available": available}
    ledger_ok(admin)


def test_an_unavailable_gateway_leaves_the_items_for_the_retry_which_sends_each_once(
    merchant, admin, behaving, owner_conn
):
    from ledgerline.gateways.base import GatewayUnavailable
    from ledgerline.payments import bulk_payouts

    fake = behaving
    client, account, payees = merchant()
    r = bulk(client, account, [(payees[0], "10.00"), (payees[1], "20.00")])
    assert r.status_code == 201 and r.json()["status"] == "approved", r.text
    bid = uuid.UUID(r.json()["id"])
    references = {i["withdrawal_id"] for i in r.json()["items"]}
    fake.misbehaviour["paystack"].payout = "error"  # the bulk request answers 500

    with pytest.raises(GatewayUnavailable):
        bulk_payouts.send_bulk(bid)

    assert rows(owner_conn, "SELECT count(*) FROM withdrawals WHERE bulk_payout_id = %s AND submitted_at IS NULL",
                str(bid)) == [(2,)]  # fmt: skip
    fake.misbehaviour["paystack"].payout = None
    assert bulk_payouts.send_bulk(bid) == {"submitted": 2}
    assert bulk_payouts.send_bulk(bid) == {}  # a redelivered message finds nothing left to send
    assert sorted(t.reference for t in fake.transfers.values() if t.reference in references) == sorted(references)


def test_a_bulk_payout_of_a_thousand_items_is_held_in_one_request_and_approved_in_another(
    merchant, admin, behaving, owner_conn
):
    """Each statement within the application role's statement timeout (5 s by default)."""
    n = int(os.environ.get("BULK_N", "1000"))
    client, account, payees = merchant("USD", "5000.00")
    items = [(payees[i % 3], "1.01") for i in range(n)]  # USD 1,010.00: above the approval limit
    started = time.monotonic()

    r = bulk(client, account, items, currency="USD")

    requested = time.monotonic() - started
    assert r.status_code == 201, r.text[:500]
    approved = admin.post(f"/v1/admin/payouts/bulk/{r.json()['id']}/approve", idempotency_key=True)
    took = time.monotonic() - started - requested
    print(f"bulk payout of {n} items: requested in {requested:.2f} s, approved in {took:.2f} s")  # pytest -s
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text[:500]
    assert r.json()["item_count"] == n == 1000 and r.json()["amount"]["amount"] == "1010.00"
    assert rows(owner_conn, "SELECT count(*), count(DISTINCT hold_id) FROM withdrawals WHERE bulk_payout_id = %s",
                r.json()["id"]) == [(1000, 1000)]  # fmt: skip
    assert balance(client, account) == {"posted": Decimal("5000.00"), "available": Decimal("3990.00")}
    ledger_ok(admin)


def test_more_items_than_the_approval_count_need_an_administrator_whatever_the_total(merchant, behaving):
    client, account, payees = merchant(n=1)

    many = bulk(client, account, [(payees[0], "0.01")] * 101)
    few = bulk(client, account, [(payees[0], "0.01")] * 100)

    assert (many.json()["status"], many.json()["approvals_required"]) == ("pending_approval", 1), many.text[:300]
    assert (few.json()["status"], few.json()["approvals_required"]) == ("approved", 0), few.text[:300]
