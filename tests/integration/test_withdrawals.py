"""Withdrawals against the real database, through the one money statement (``money_call``):
the hold, the sealed destination, approval (the hold pinned), rejection, the strict
state machine, the step-up, settlement of payout events; racing decisions, duplicate
events delivered at once, and crashes midway that leave nothing."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import pyotp
import pytest

from ledgerline import crypto, errors, idempotency, jsonutil, routes
from ledgerline.auth import admission, otp, sessions
from ledgerline.caller import Principal, Request
from ledgerline.db import transaction
from ledgerline.gateways.base import WebhookEvent
from ledgerline.ledger import operations
from ledgerline.ledger.invariants import check_invariants
from ledgerline.ledger.testing import create_user, new_wallet, user_actor
from ledgerline.payments import withdrawals
from ledgerline.payments.withdrawals import CreateWithdrawal, Destination

CREATE = routes.by_handler("functions.payments.withdrawals_create")
APPROVE = routes.by_handler("functions.payments.admin_withdrawals_approve")
REJECT = routes.by_handler("functions.payments.admin_withdrawals_reject")
REVERSE = routes.by_handler("functions.ledger.admin_transactions_reverse")
NUMBER = "0123456789"


@pytest.fixture(autouse=True)
def _crypto(crypto_env):
    """Field encryption and blind indexes against the KMS/Secrets Manager stand-in."""


def admitted(user_id, route, amr=("pwd",)):
    session_id, _ = transaction(lambda cur: sessions.create_session(cur, user_id, sessions.Client(), amr=list(amr)))
    claims = {"typ": "access", "sub": str(user_id), "jti": str(uuid.uuid4()), "sid": str(session_id), "amr": list(amr)}
    return admission.prepare(route, Request("r", "192.0.2.9", "tests", {}, None), claims)


@pytest.fixture(scope="module")
def admin_id(database_url):
    return transaction(lambda cur: create_user(cur, "admin"))


def run(adm, op, args, key=None, owner=None):
    full = operations.by_name(op).arguments(args, owner=owner)
    return idempotency.call(
        adm, key=key or uuid.uuid4(), request_hash=jsonutil.canonical(args)[:64], operation=op, args=full
    )


def body(wallet, amount="100.00", otp_code=None, currency="NGN"):
    return CreateWithdrawal(
        account_id=wallet.id,
        amount=amount,
        currency=currency,
        destination=Destination(bank_code="058", account_number=NUMBER, account_name="Ada Obi"),
        otp=otp_code,
    )


def request(wallet, amount="100.00", *, key=None, otp_code=None, currency="NGN", amr=("pwd",)):
    key = key or uuid.uuid4()
    principal = Principal(wallet.owner_id, "user")
    args = withdrawals.request_arguments(
        body(wallet, amount, otp_code, currency), caller=principal, key=key, actor=user_actor(wallet.owner_id)
    )
    # The hash stands for the HTTP request (the body as sent), as the Endpoint's does.
    adm = admitted(wallet.owner_id, CREATE, amr)
    full = operations.by_name("withdrawal_request").arguments(args, owner=wallet.owner_id)
    request_hash = idempotency.fingerprint(
        "POST", "/v1/withdrawals", body(wallet, amount, otp_code).model_dump(mode="json")
    )
    return idempotency.call(adm, key=key, request_hash=request_hash, operation="withdrawal_request", args=full)


def requested(wallet, amount="100.00", amr=("pwd",)):
    out = request(wallet, amount, amr=amr)
    assert out.status == 201, out.body
    return jsonutil.loads(out.body)


def approve(admin_id, wid):
    return run(admitted(admin_id, APPROVE, ("pwd", "otp")), "withdrawal_approve", {"withdrawal_id": wid})


def reject(admin_id, wid, reason="destination looks wrong"):
    return run(
        admitted(admin_id, REJECT, ("pwd", "otp")), "withdrawal_reject", {"withdrawal_id": wid, "reason": reason}
    )


def one(query, *params):
    def read(cur):
        cur.execute(query, params)
        return cur.fetchone()

    return transaction(read)


def balance(account_id):
    return one("SELECT posted, held FROM balances WHERE account_id = %s", account_id)


def clearing_total(currency="NGN"):
    row = one(
        """
        SELECT coalesce(sum(e.amount), 0) AS total FROM entries e JOIN accounts a ON a.id = e.account_id
         WHERE a.kind = 'payout_clearing' AND a.currency = %s
        """,
        currency,
    )
    return row["total"]


def withdrawal(wid):
    return one("SELECT * FROM withdrawals WHERE id = %s", wid)


def audits(wid, action):
    return one("SELECT count(*) AS n FROM audit_log WHERE resource_id = %s AND action = %s", str(wid), action)["n"]


def trail(wid):
    """Every audit row about the withdrawal, oldest first: one per action."""

    def read(cur):
        cur.execute("SELECT action FROM audit_log WHERE resource_id = %s ORDER BY occurred_at, id", (str(wid),))
        return [r["action"] for r in cur.fetchall()]

    return transaction(read)


def outbox(wid, queue):
    def read(cur):
        cur.execute("SELECT payload FROM outbox WHERE queue = %s AND payload->>'withdrawal_id' = %s", (queue, str(wid)))
        return [r["payload"] for r in cur.fetchall()]

    return transaction(read)


def payout_event(wid, status, amount="100.00", currency="NGN", event_id=None):
    return WebhookEvent(
        provider="paystack",
        event_id=event_id or f"evt-{uuid.uuid4().hex[:8]}",
        kind="payout",
        type="transfer.success" if status == "succeeded" else "transfer.failed",
        reference=str(wid),
        amount=Decimal(amount),
        currency=currency,
        status=status,
        raw={"data": {"reason": "Account closed"}} if status == "failed" else {},
    )


def no_findings():
    assert transaction(check_invariants) == []


# ------------------------------------------------------------------------------ request


def test_a_request_holds_the_amount_and_keeps_the_account_number_sealed(database_url):
    wallet = new_wallet("NGN", 500)
    w = requested(wallet, "120.50")

    assert w["status"] == "requested"
    assert w["amount"] == {"amount": "120.50", "currency": "NGN"}
    assert w["destination"] == {"bank_code": "058", "account_number": "****6789", "account_name": "Ada Obi"}
    assert balance(wallet.id) == {"posted": Decimal("500"), "held": Decimal("120.5")}
    row = withdrawal(w["id"])
    assert row["hold_id"] == uuid.UUID(w["hold_id"]) and row["step_up"] == "none"
    assert NUMBER.encode() not in bytes(row["account_number_ciphertext"])
    assert crypto.decrypt_field(
        bytes(row["account_number_ciphertext"]), table="withdrawals", column="account_number_ciphertext", row_id=row["id"]
    ) == NUMBER  # fmt: skip
    assert bytes(row["account_number_blind_index"]) == crypto.blind_index(NUMBER, kind="bank_account")
    assert audits(w["id"], "withdrawal.requested") == 1
    # Nowhere in the audit trail or the outbox: the plaintext number.
    assert one("SELECT count(*) AS n FROM audit_log WHERE payload_after::text || metadata::text LIKE %s",
               f"%{NUMBER}%")["n"] == 0  # fmt: skip
    assert one("SELECT count(*) AS n FROM outbox WHERE payload::text LIKE %s", f"%{NUMBER}%")["n"] == 0


@pytest.mark.parametrize(
    ("amount", "currency", "status", "code"),
    [
        ("1000.00", "NGN", 409, "insufficient_funds"),
        ("1.001", "NGN", 422, "validation_error"),
        ("10.00", "USD", 422, "validation_error"),
        ("10.00", "XXX", 422, "validation_error"),
    ],
)
def test_a_refused_request_is_stored_and_changes_nothing(database_url, amount, currency, status, code):
    wallet = new_wallet("NGN", 50)
    before = one("SELECT count(*) AS n FROM withdrawals")["n"]
    out = request(wallet, amount, currency=currency)

    assert (out.status, jsonutil.loads(out.body)["code"]) == (status, code)
    assert balance(wallet.id) == {"posted": Decimal("50"), "held": Decimal("0")}
    assert one("SELECT count(*) AS n FROM withdrawals")["n"] == before


def test_another_users_wallet_is_not_found(database_url):
    mine, theirs = new_wallet("NGN", 50), new_wallet("NGN", 50)
    principal = Principal(mine.owner_id, "user")
    key = uuid.uuid4()
    args = withdrawals.request_arguments(
        body(theirs, "5.00"), caller=principal, key=key, actor=user_actor(mine.owner_id)
    )
    out = run(admitted(mine.owner_id, CREATE), "withdrawal_request", args, key=key, owner=mine.owner_id)

    assert (out.status, jsonutil.loads(out.body)["code"]) == (404, "not_found")
    assert balance(theirs.id)["held"] == 0


def test_a_crash_after_the_hold_leaves_no_hold_and_no_key(database_url, owner_conn):
    wallet = new_wallet("NGN", 100)
    with owner_conn.cursor() as cur:
        cur.execute(
            """
            CREATE FUNCTION test_fault_withdrawal() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'simulated crash after the hold'; END $$;
            CREATE TRIGGER test_fault_withdrawal BEFORE INSERT ON withdrawals
              FOR EACH ROW EXECUTE FUNCTION test_fault_withdrawal();
            """
        )
    key = uuid.uuid4()
    try:
        with pytest.raises(Exception, match="simulated crash"):
            request(wallet, "10.00", key=key)
    finally:
        with owner_conn.cursor() as cur:
            cur.execute("DROP TRIGGER test_fault_withdrawal ON withdrawals; DROP FUNCTION test_fault_withdrawal()")

    assert balance(wallet.id) == {"posted": Decimal("100"), "held": Decimal("0")}
    assert one("SELECT count(*) AS n FROM holds WHERE account_id = %s", wallet.id)["n"] == 0
    assert one("SELECT count(*) AS n FROM idempotency_keys WHERE key = %s", key)["n"] == 0
    assert request(wallet, "10.00", key=key).status == 201  # the retry runs


def test_requests_racing_on_one_wallet_never_hold_more_than_it_has(database_url):
    wallet = new_wallet("NGN", 100)

    results = race([lambda: request(wallet, "30.00") for _ in range(6)])

    assert sorted(r.status for r in results) == [201, 201, 201, 409, 409, 409]
    assert balance(wallet.id) == {"posted": Decimal("100"), "held": Decimal("90")}
    assert one("SELECT count(*) AS n FROM withdrawals WHERE account_id = %s", wallet.id)["n"] == 3


def test_one_key_sent_five_times_at_once_creates_one_withdrawal(database_url):
    wallet = new_wallet("NGN", 100)
    key = uuid.uuid4()

    results = race([lambda: request(wallet, "30.00", key=key) for _ in range(5)])

    created = [r for r in results if r.status == 201]
    assert len({r.body for r in created}) == 1 and sum(not r.replayed for r in created) == 1
    assert all(r.status in (201, 409) for r in results)  # 409: still running after the wait
    assert balance(wallet.id)["held"] == Decimal("30")
    assert one("SELECT count(*) AS n FROM withdrawals WHERE account_id = %s", wallet.id)["n"] == 1


@contextlib.contextmanager
def outbox_fault(owner_conn, queue):
    """While active, writing an outbox row for ``queue`` fails: a crash at the very end of
    a decision, after its money moved."""
    with owner_conn.cursor() as cur:
        cur.execute(
            f"""
            CREATE FUNCTION test_fault_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.queue = '{queue}' AND NEW.payload ? 'withdrawal_id' THEN
                RAISE EXCEPTION 'simulated crash at the outbox';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER test_fault_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION test_fault_outbox();
            """
        )
    try:
        yield
    finally:
        with owner_conn.cursor() as cur:
            cur.execute("DROP TRIGGER test_fault_outbox ON outbox; DROP FUNCTION test_fault_outbox()")


# ------------------------------------------------------------------------------ decisions


def test_approval_pins_the_hold_and_queues_the_payout_by_id(database_url, admin_id):
    wallet = new_wallet("NGN", 500)
    w = requested(wallet, "200.00")
    clearing = clearing_total()

    out = approve(admin_id, w["id"])

    assert out.status == 200, out.body
    approved = jsonutil.loads(out.body)
    assert approved["status"] == "approved" and approved["capture_transaction_id"] is None
    assert balance(wallet.id) == {"posted": Decimal("500"), "held": Decimal("200")}  # held until the payout answers
    assert clearing_total() == clearing
    hold = one("SELECT status, isfinite(expires_at) AS expires FROM holds WHERE id = %s", w["hold_id"])
    assert hold == {"status": "active", "expires": False}  # pinned: the expiry job never takes it
    assert outbox(w["id"], "gateway-payouts") == [{"type": "withdrawal.approved", "withdrawal_id": w["id"]}]
    assert audits(w["id"], "withdrawal.approved") == 1
    assert withdrawal(w["id"])["decided_by"] == admin_id
    no_findings()


def test_rejection_releases_the_hold_and_tells_the_user(database_url, admin_id):
    wallet = new_wallet("NGN", 500)
    w = requested(wallet, "200.00")

    out = reject(admin_id, w["id"], "  bank details do not match  ")

    assert out.status == 200, out.body
    assert jsonutil.loads(out.body)["status"] == "rejected"
    assert balance(wallet.id) == {"posted": Decimal("500"), "held": Decimal("0")}
    assert one("SELECT status FROM holds WHERE id = %s", w["hold_id"])["status"] == "voided"
    assert withdrawal(w["id"])["reason"] == "bank details do not match"
    [notice] = outbox(w["id"], "notifications")
    assert notice["type"] == "withdrawal.rejected" and notice["user_id"] == str(wallet.owner_id)
    assert NUMBER not in str(notice) and "6789" in notice["message"]
    assert audits(w["id"], "withdrawal.rejected") == 1
    assert outbox(w["id"], "gateway-payouts") == []
    assert trail(w["id"]) == ["withdrawal.requested", "withdrawal.rejected"]


@pytest.mark.parametrize(
    ("first", "then"), [("approve", "approve"), ("approve", "reject"), ("reject", "approve"), ("reject", "reject")]
)
def test_a_decided_withdrawal_cannot_be_decided_again(database_url, admin_id, first, then):
    wallet = new_wallet("NGN", 500)
    w = requested(wallet, "10.00")
    decide = {"approve": approve, "reject": reject}
    assert decide[first](admin_id, w["id"]).status == 200
    state = (balance(wallet.id), withdrawal(w["id"])["status"])

    out = decide[then](admin_id, w["id"])

    assert (out.status, jsonutil.loads(out.body)["code"]) == (409, "invalid_state_transition")
    assert (balance(wallet.id), withdrawal(w["id"])["status"]) == state


def test_a_frozen_wallets_withdrawal_cannot_be_approved(database_url, admin_id):
    """A freeze (fraud, KYC) stops the money a pending withdrawal would take out."""
    from ledgerline import ledger

    wallet = new_wallet("NGN", 500)
    w = requested(wallet, "100.00")
    transaction(lambda cur: ledger.freeze(cur, wallet.id, actor=user_actor(admin_id, "admin"), reason="kyc review"))

    out = approve(admin_id, w["id"])

    assert (out.status, jsonutil.loads(out.body)["code"]) == (409, "conflict"), out.body
    assert withdrawal(w["id"])["status"] == "requested"
    assert one("SELECT isfinite(expires_at) AS expires FROM holds WHERE id = %s", w["hold_id"])["expires"] is True
    assert outbox(w["id"], "gateway-payouts") == []
    assert reject(admin_id, w["id"], "frozen for review").status == 200  # it can still be turned down


def test_an_administrator_cannot_approve_their_own_withdrawal(database_url, admin_id):
    """Two people for money leaving (ASVS 2.3.5): as for a bulk payout, never one's own."""
    wallet = new_wallet("NGN", 500, owner_id=admin_id)
    w = requested(wallet, "100.00", amr=("pwd", "otp"))

    out = approve(admin_id, w["id"])

    assert (out.status, jsonutil.loads(out.body)["code"]) == (403, "forbidden"), out.body
    assert withdrawal(w["id"])["status"] == "requested"


@pytest.mark.parametrize("which", ["settlement", "capture before 0032"])
def test_a_withdrawals_transactions_cannot_be_reversed_by_hand(database_url, admin_id, owner_conn, which):
    """Reversed by hand, a paid withdrawal's settlement would put back in the wallet money the
    bank was paid (and an old capture, money still on its way out)."""
    wallet = new_wallet("NGN", 500)
    if which == "settlement":
        w = approved(admin_id, wallet)
        withdrawals.settle_payout(payout_event(w["id"], "succeeded"))
        tx = withdrawal(w["id"])["settlement_transaction_id"]
    else:
        w = approved_before_0032(owner_conn, wallet)
        tx = withdrawal(w["id"])["capture_transaction_id"]
    before = balance(wallet.id)

    out = run(admitted(admin_id, REVERSE, ("pwd", "otp")), "reverse", {"transaction_id": str(tx), "reason": "mistake"})

    assert (out.status, jsonutil.loads(out.body)["code"]) == (409, "invalid_state_transition"), out.body
    assert f"withdrawal {w['id']}" in jsonutil.loads(out.body)["detail"]
    assert balance(wallet.id) == before
    no_findings()


def test_the_ledgers_own_calls_do_not_resolve_or_reverse_a_withdrawals_money(database_url, admin_id):
    """The raising forms the Python domain calls refuse what the routes refuse; the expiry
    job never expires a pinned hold, whatever "now" it is given."""
    from ledgerline.ledger import corrections, holds

    wallet = new_wallet("NGN", 500)
    other = new_wallet("NGN", 0, owner_id=wallet.owner_id)
    w = approved(admin_id, wallet)
    paid = approved(admin_id, wallet)
    withdrawals.settle_payout(payout_event(paid["id"], "succeeded"))
    actor = user_actor(admin_id, "admin")

    calls = [
        lambda cur: holds.void_hold(cur, w["hold_id"], actor=actor),
        lambda cur: holds.capture_hold(cur, w["hold_id"], to_account_id=other.id, actor=actor),
        lambda cur: corrections.reverse(cur, withdrawal(paid["id"])["settlement_transaction_id"], reason="oops",
                                        actor=actor),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(errors.InvalidStateTransition, match="belongs to withdrawal"):
            transaction(call)

    def expire_at_infinity(cur):
        cur.execute('SELECT ledger_expire_holds(\'infinity\', 100000, \'{"id": null, "type": "system"}\') AS n')
        return cur.fetchone()["n"]

    transaction(expire_at_infinity)
    assert one("SELECT status FROM holds WHERE id = %s", w["hold_id"])["status"] == "active"
    assert balance(wallet.id) == {"posted": Decimal("400"), "held": Decimal("100")}
    no_findings()


def test_a_reason_is_required_and_an_unknown_withdrawal_is_not_found(database_url, admin_id):
    wallet = new_wallet("NGN", 500)
    w = requested(wallet, "10.00")
    out = reject(admin_id, w["id"], " x ")
    assert (out.status, jsonutil.loads(out.body)["code"]) == (422, "validation_error")
    assert withdrawal(w["id"])["status"] == "requested"
    for decide in (approve, reject):
        missing = decide(admin_id, str(uuid.uuid4()))
        assert (missing.status, jsonutil.loads(missing.body)["code"]) == (404, "not_found")


def race(calls):
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def go(i, call):
        barrier.wait(timeout=30)
        results[i] = call()

    threads = [threading.Thread(target=go, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_approvals_racing_approve_once(database_url, admin_id):
    wallet = new_wallet("NGN", 500)
    w = requested(wallet, "100.00")

    results = race([lambda: approve(admin_id, w["id"]) for _ in range(5)])

    assert sorted(r.status for r in results) == [200, 409, 409, 409, 409]
    assert balance(wallet.id) == {"posted": Decimal("500"), "held": Decimal("100")}
    assert len(outbox(w["id"], "gateway-payouts")) == 1
    assert audits(w["id"], "withdrawal.approved") == 1


def test_approve_and_reject_racing_end_in_exactly_one_decision(database_url, admin_id):
    for _ in range(3):
        wallet = new_wallet("NGN", 500)
        w = requested(wallet, "100.00")

        wid = w["id"]
        results = race([lambda wid=wid: approve(admin_id, wid), lambda wid=wid: reject(admin_id, wid)])

        assert sorted(r.status for r in results) == [200, 409]
        status = withdrawal(w["id"])["status"]
        won = "approve" if results[0].status == 200 else "reject"
        assert status == {"approve": "approved", "reject": "rejected"}[won]
        held = Decimal("100") if won == "approve" else Decimal("0")
        assert balance(wallet.id) == {"posted": Decimal("500"), "held": held}
        assert len(outbox(w["id"], "gateway-payouts")) == (1 if won == "approve" else 0)
    no_findings()


def test_a_crash_after_the_pin_leaves_nothing_and_a_retry_approves(database_url, admin_id, owner_conn):
    wallet = new_wallet("NGN", 500)
    w = requested(wallet, "100.00")
    key = uuid.uuid4()

    with outbox_fault(owner_conn, "gateway-payouts"), pytest.raises(Exception, match="simulated crash"):
        run(admitted(admin_id, APPROVE, ("pwd", "otp")), "withdrawal_approve", {"withdrawal_id": w["id"]}, key=key)

    assert withdrawal(w["id"])["status"] == "requested"
    assert balance(wallet.id) == {"posted": Decimal("500"), "held": Decimal("100")}
    assert one("SELECT status, isfinite(expires_at) AS expires FROM holds WHERE id = %s", w["hold_id"]) == {
        "status": "active", "expires": True}  # fmt: skip
    assert outbox(w["id"], "gateway-payouts") == []
    assert audits(w["id"], "withdrawal.approved") == 0
    retry = run(admitted(admin_id, APPROVE, ("pwd", "otp")), "withdrawal_approve", {"withdrawal_id": w["id"]}, key=key)
    assert retry.status == 200 and not retry.replayed


def test_a_crash_at_the_end_of_a_rejection_leaves_the_hold_active(database_url, admin_id, owner_conn):
    wallet = new_wallet("NGN", 500)
    w = requested(wallet, "100.00")

    with outbox_fault(owner_conn, "notifications"), pytest.raises(Exception, match="simulated crash"):
        reject(admin_id, w["id"])

    assert withdrawal(w["id"])["status"] == "requested"
    assert one("SELECT status FROM holds WHERE id = %s", w["hold_id"])["status"] == "active"
    assert balance(wallet.id) == {"posted": Decimal("500"), "held": Decimal("100")}
    assert audits(w["id"], "withdrawal.rejected") == 0
    assert reject(admin_id, w["id"]).status == 200


def test_an_expired_hold_cannot_be_approved_but_can_be_rejected(database_url, admin_id, owner_conn):
    wallet = new_wallet("NGN", 500)
    w = requested(wallet, "100.00")
    with owner_conn.cursor() as cur:  # as the hold-expiry job would, 30 days on
        cur.execute("UPDATE holds SET status = 'expired', resolved_at = now() WHERE id = %s", (w["hold_id"],))

    out = approve(admin_id, w["id"])
    assert (out.status, jsonutil.loads(out.body)["code"]) == (409, "invalid_state_transition")
    assert reject(admin_id, w["id"], "hold expired").status == 200
    assert balance(wallet.id) == {"posted": Decimal("500"), "held": Decimal("0")}


# ------------------------------------------------------------------------------ settlement


def approved(admin_id, wallet, amount="100.00"):
    w = requested(wallet, amount)
    assert approve(admin_id, w["id"]).status == 200
    return w


def legs(transaction_id):
    return one(
        """
        SELECT array_agg(a.kind || ':' || e.amount::text ORDER BY a.kind) AS legs FROM entries e
          JOIN accounts a ON a.id = e.account_id WHERE e.transaction_id = %s
        """,
        transaction_id,
    )["legs"]


def test_a_paid_payout_captures_the_hold_to_external_funding(database_url, admin_id):
    wallet = new_wallet("NGN", 500)
    w = approved(admin_id, wallet)
    clearing = clearing_total()

    withdrawals.settle_payout(payout_event(w["id"], "succeeded"))

    row = withdrawal(w["id"])
    assert row["status"] == "paid" and row["settled_at"] is not None
    assert legs(row["settlement_transaction_id"]) == ["external_funding:100.0000", "user_wallet:-100.0000"]
    hold = one("SELECT status, transaction_id FROM holds WHERE id = %s", w["hold_id"])
    assert hold == {"status": "posted", "transaction_id": row["settlement_transaction_id"]}
    assert (row["capture_transaction_id"], row["reversal_transaction_id"]) == (None, None)
    assert clearing_total() == clearing
    assert balance(wallet.id) == {"posted": Decimal("400"), "held": Decimal("0")}
    assert [n["type"] for n in outbox(w["id"], "notifications")] == ["withdrawal.paid"]
    assert trail(w["id"]) == ["withdrawal.requested", "withdrawal.approved", "withdrawal.paid"]
    no_findings()


def test_a_failed_payout_voids_the_hold(database_url, admin_id):
    wallet = new_wallet("NGN", 500)
    w = approved(admin_id, wallet)
    entries = one("SELECT count(*) AS n FROM entries WHERE account_id = %s", wallet.id)["n"]

    withdrawals.settle_payout(payout_event(w["id"], "failed"))

    row = withdrawal(w["id"])
    assert (row["status"], row["reason"]) == ("failed", "Account closed")
    assert (row["capture_transaction_id"], row["settlement_transaction_id"], row["reversal_transaction_id"]) == (
        None, None, None)  # fmt: skip
    assert one("SELECT status FROM holds WHERE id = %s", w["hold_id"])["status"] == "voided"
    assert one("SELECT count(*) AS n FROM entries WHERE account_id = %s", wallet.id)["n"] == entries  # nothing posted
    assert balance(wallet.id) == {"posted": Decimal("500"), "held": Decimal("0")}
    assert [n["type"] for n in outbox(w["id"], "notifications")] == ["withdrawal.failed"]
    assert trail(w["id"]) == ["withdrawal.requested", "withdrawal.approved", "withdrawal.failed"]
    no_findings()


def test_a_payout_answering_after_the_holds_30_days_still_settles(database_url, admin_id):
    """The pinned hold is not the expiry job's: a late payout is paid from money still held."""
    from datetime import UTC, datetime, timedelta

    from ledgerline.ledger import holds

    wallet = new_wallet("NGN", 500)
    w = approved(admin_id, wallet)
    later = datetime.now(UTC) + timedelta(days=365)
    transaction(lambda cur: holds.expire_due(cur, now=later, limit=10_000))

    assert one("SELECT status FROM holds WHERE id = %s", w["hold_id"])["status"] == "active"
    withdrawals.settle_payout(payout_event(w["id"], "succeeded"))
    assert withdrawal(w["id"])["status"] == "paid"
    assert balance(wallet.id) == {"posted": Decimal("400"), "held": Decimal("0")}
    no_findings()


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_a_wallet_frozen_while_its_payout_is_out_still_settles(database_url, admin_id, status):
    """A freeze does not unmake a payout the gateway made, nor keep a failed one's money held."""
    from ledgerline import ledger

    wallet = new_wallet("NGN", 500)
    w = approved(admin_id, wallet)
    transaction(lambda cur: ledger.freeze(cur, wallet.id, actor=user_actor(admin_id, "admin"), reason="kyc review"))

    withdrawals.settle_payout(payout_event(w["id"], status))

    posted = Decimal("400") if status == "succeeded" else Decimal("500")
    assert balance(wallet.id) == {"posted": posted, "held": Decimal("0")}
    assert withdrawal(w["id"])["status"] == ("paid" if status == "succeeded" else "failed")
    no_findings()


def test_the_ledger_check_finds_an_approved_withdrawals_hold_resolved_behind_its_back(
    database_url, admin_id, owner_conn
):
    """Only possible past the routines (here: the owner, in a transaction rolled back)."""
    from psycopg2.extras import RealDictCursor

    from ledgerline.ledger import invariants

    wallet = new_wallet("NGN", 500)
    w = approved(admin_id, wallet)
    # the full check's account slice of exactly this wallet, as the hourly job runs it
    just_this = {"after": str(uuid.UUID(int=wallet.id.int - 1)), "limit": 1}
    with owner_conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute("BEGIN")
        try:
            cur.execute("UPDATE holds SET status = 'voided', resolved_at = now() WHERE id = %s", (w["hold_id"],))
            whole = [f for f in check_invariants(cur) if f.invariant == "withdrawal_hold_in_step"]
            sliced = [f for f in invariants._run(cur, invariants._ACCOUNT_SLICE, invariants._FULL_ACCOUNT_CHECKS,
                                                 just_this) if f.invariant == "withdrawal_hold_in_step"]  # fmt: skip
        finally:
            cur.execute("ROLLBACK")
    for found in (whole, sliced):
        assert [f.data["withdrawal_id"] for f in found] == [w["id"]]
        assert f"withdrawal {w['id']} is approved but its hold is voided" in found[0].detail
    no_findings()


def approved_before_0032(owner_conn, wallet, amount="100.00"):
    """A withdrawal approved as approval worked before migration 0032: its hold captured
    into payout_clearing at once (capture_transaction_id)."""
    w = requested(wallet, amount)
    with owner_conn.cursor() as cur:
        cur.execute(
            """
            WITH capture AS (
              SELECT ledger_hold_post(
                p_hold => %(hold)s, p_to => (SELECT id FROM accounts WHERE kind = 'payout_clearing' AND currency = 'NGN'),
                p_amount => NULL, p_actor => '{"id": null, "type": "system"}') AS c)
            UPDATE withdrawals SET status = 'approved', decided_at = now(),
                   capture_transaction_id = (SELECT (c->'transaction'->>'id')::uuid FROM capture)
             WHERE id = %(id)s
            """,
            {"hold": w["hold_id"], "id": w["id"]},
        )
    return w


def test_a_withdrawal_captured_at_approval_before_0032_settles_through_payout_clearing(
    database_url, admin_id, owner_conn
):
    paid, failed = (approved_before_0032(owner_conn, new_wallet("NGN", 500)) for _ in range(2))
    clearing = clearing_total()

    withdrawals.settle_payout(payout_event(paid["id"], "succeeded"))
    withdrawals.settle_payout(payout_event(failed["id"], "failed"))

    row = withdrawal(paid["id"])
    assert row["status"] == "paid"
    assert legs(row["settlement_transaction_id"]) == ["external_funding:100.0000", "payout_clearing:-100.0000"]
    row = withdrawal(failed["id"])
    assert row["status"] == "failed"
    reversal = one("SELECT kind, reverses FROM transactions WHERE id = %s", row["reversal_transaction_id"])
    assert reversal == {"kind": "reversal", "reverses": row["capture_transaction_id"]}
    assert balance(row["account_id"]) == {"posted": Decimal("500"), "held": Decimal("0")}
    assert clearing_total() - clearing == Decimal("-200")
    no_findings()


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_a_merchants_subscribed_endpoint_gets_the_settled_withdrawal_masked(database_url, admin_id, status):
    from ledgerline.audit import Actor
    from ledgerline.webhooks import endpoints

    merchant = transaction(lambda cur: create_user(cur, "merchant"))
    actor = Actor(id=merchant, type="merchant", ip="127.0.0.1", user_agent="tests")
    endpoint = transaction(
        lambda cur: endpoints.create(cur, Principal(merchant, "merchant"), url="http://127.0.0.1:9/hook",
                                     events=["withdrawal.paid", "withdrawal.failed"], actor=actor)
    )  # fmt: skip
    w = approved(admin_id, new_wallet("NGN", 500, owner_id=merchant))

    withdrawals.settle_payout(payout_event(w["id"], status))

    [event] = transaction(
        lambda cur: (
            cur.execute(
                """
                SELECT e.type, e.data FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
                 WHERE d.endpoint_id = %s
                """,
                (endpoint.id,),
            ),
            cur.fetchall(),
        )[1]
    )
    assert event["type"] == {"succeeded": "withdrawal.paid", "failed": "withdrawal.failed"}[status]
    assert event["data"]["withdrawal"]["id"] == w["id"]
    assert event["data"]["withdrawal"]["destination"]["account_number"] == "****6789"
    assert NUMBER not in jsonutil.dumps(event["data"])


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_a_crash_while_settling_leaves_it_approved_and_the_event_settles_on_retry(
    database_url, admin_id, owner_conn, status
):
    wallet = new_wallet("NGN", 500)
    w = approved(admin_id, wallet)
    clearing = clearing_total()

    with outbox_fault(owner_conn, "notifications"), pytest.raises(Exception, match="simulated crash"):
        withdrawals.settle_payout(payout_event(w["id"], status))

    row = withdrawal(w["id"])
    assert (row["status"], row["settlement_transaction_id"], row["reversal_transaction_id"]) == ("approved", None, None)
    assert (balance(wallet.id), clearing_total()) == ({"posted": Decimal("500"), "held": Decimal("100")}, clearing)
    assert one("SELECT status FROM holds WHERE id = %s", w["hold_id"])["status"] == "active"
    withdrawals.settle_payout(payout_event(w["id"], status))  # the consumer's retry
    assert withdrawal(w["id"])["status"] == ("paid" if status == "succeeded" else "failed")
    no_findings()


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_five_deliveries_of_one_event_at_once_settle_once(database_url, admin_id, status):
    wallet = new_wallet("NGN", 500)
    w = approved(admin_id, wallet)
    event = payout_event(w["id"], status, event_id="evt-dup")

    race([lambda: withdrawals.settle_payout(event) for _ in range(5)])

    posted = Decimal("400") if status == "succeeded" else Decimal("500")
    assert balance(wallet.id)["posted"] == posted
    action = "withdrawal.paid" if status == "succeeded" else "withdrawal.failed"
    assert audits(w["id"], action) == 1
    assert len(outbox(w["id"], "notifications")) == 1
    assert one("SELECT count(*) AS n FROM transactions WHERE metadata->>'withdrawal_id' = %s",
               w["id"])["n"] == (1 if status == "succeeded" else 0)  # fmt: skip
    assert one("SELECT status FROM holds WHERE id = %s", w["hold_id"])["status"] == (
        "posted" if status == "succeeded" else "voided")  # fmt: skip
    no_findings()


def test_a_second_different_answer_changes_nothing(database_url, admin_id):
    wallet = new_wallet("NGN", 500)
    w = approved(admin_id, wallet)
    withdrawals.settle_payout(payout_event(w["id"], "succeeded"))
    withdrawals.settle_payout(payout_event(w["id"], "failed"))

    assert withdrawal(w["id"])["status"] == "paid"
    assert balance(wallet.id)["posted"] == Decimal("400")


@pytest.mark.parametrize(
    "event",
    [
        lambda wid: payout_event(wid, "succeeded", amount="99.00"),
        lambda wid: payout_event(wid, "succeeded", currency="USD"),
        lambda wid: payout_event(wid, "pending"),
        lambda wid: payout_event(uuid.uuid4(), "succeeded"),
        lambda wid: WebhookEvent("paystack", "e1", "payout", "transfer.success", "not-ours", None, None, "succeeded"),
    ],
    ids=["other-amount", "other-currency", "pending", "unknown-withdrawal", "foreign-reference"],
)
def test_an_event_that_does_not_match_changes_nothing(database_url, admin_id, event):
    wallet = new_wallet("NGN", 500)
    w = approved(admin_id, wallet)
    withdrawals.settle_payout(event(w["id"]))

    assert withdrawal(w["id"])["status"] == "approved"
    assert balance(wallet.id) == {"posted": Decimal("500"), "held": Decimal("100")}
    assert outbox(w["id"], "notifications") == []


def test_a_payout_event_for_a_withdrawal_not_approved_changes_nothing(database_url):
    wallet = new_wallet("NGN", 500)
    w = requested(wallet, "100.00")
    withdrawals.settle_payout(payout_event(w["id"], "succeeded"))

    assert withdrawal(w["id"])["status"] == "requested"
    assert balance(wallet.id) == {"posted": Decimal("500"), "held": Decimal("100")}


# ------------------------------------------------------------------------------ step-up


@pytest.fixture
def step_up_at_100(monkeypatch):
    from ledgerline import config

    monkeypatch.setenv("LEDGERLINE_WITHDRAWAL_STEP_UP", "100.00;USD=5.00")
    config.settings.cache_clear()
    yield
    monkeypatch.undo()
    config.settings.cache_clear()


def enrol(user_id) -> pyotp.TOTP:
    actor = user_actor(user_id)
    setup = transaction(lambda cur: otp.setup(cur, user_id, f"{user_id}@example.test", actor))
    totp = pyotp.TOTP(setup.secret)
    assert transaction(lambda cur: otp.verify_enrolment(cur, user_id, totp.now(), actor))
    return totp


def test_above_the_step_up_amount_a_second_factor_is_required(database_url, step_up_at_100):
    wallet = new_wallet("NGN", 1000)
    assert request(wallet, "100.00").status == 201  # at the threshold: none needed

    with pytest.raises(errors.OtpRequired, match="enrol"):
        request(wallet, "100.01")  # not enrolled
    totp = enrol(wallet.owner_id)
    with pytest.raises(errors.OtpRequired, match="send a current code"):
        request(wallet, "100.01")  # no code
    with pytest.raises(errors.OtpRequired, match="not valid"):
        request(wallet, "100.01", otp_code="000000" if totp.now() != "000000" else "111111")

    assert balance(wallet.id)["held"] == Decimal("100")  # only the first
    assert one("SELECT count(*) AS n FROM audit_log WHERE actor_id = %s AND action = 'auth.otp_failed'",
               wallet.owner_id)["n"] == 1  # fmt: skip


def test_a_code_passes_once_and_a_replay_of_its_request_needs_it_no_more(database_url, step_up_at_100):
    wallet = new_wallet("NGN", 1000)
    totp = enrol(wallet.owner_id)
    code = totp.at(time.time() + 30)  # the enrolment spent this step's code
    key = uuid.uuid4()

    first = request(wallet, "500.00", key=key, otp_code=code)
    again = request(wallet, "500.00", key=key, otp_code=code)
    with pytest.raises(errors.OtpRequired, match="already used"):
        request(wallet, "500.00", otp_code=code)  # the same code, a new request

    assert first.status == 201 and withdrawal(jsonutil.loads(first.body)["id"])["step_up"] == "otp"
    assert (again.status, again.body, again.replayed) == (201, first.body, True)
    assert balance(wallet.id)["held"] == Decimal("500")


def test_codes_tried_count_against_the_accounts_otp_limit(database_url, step_up_at_100, monkeypatch):
    from ledgerline import config

    wallet = new_wallet("NGN", 1000)
    totp = enrol(wallet.owner_id)
    wrong = "000000" if totp.now() != "000000" else "111111"
    monkeypatch.setenv("LEDGERLINE_RATE_LIMITS", "login=off;otp=2/minute;money=off;default=off;auth=off")
    config.settings.cache_clear()

    for _ in range(2):
        with pytest.raises(errors.OtpRequired):
            request(wallet, "500.00", otp_code=wrong)
    with pytest.raises(errors.RateLimited):
        request(wallet, "500.00", otp_code=totp.at(time.time() + 30))  # even the right code, now

    assert balance(wallet.id)["held"] == 0


def test_the_statement_refuses_a_step_up_that_did_not_pass(database_url, step_up_at_100):
    # A path that skipped the check (a stored answer expiring between the check and the
    # statement) still cannot create the withdrawal.
    wallet = new_wallet("USD", 100)
    key = uuid.uuid4()
    args = withdrawals.request_arguments(
        body(wallet, "5.00", currency="USD"), caller=Principal(wallet.owner_id, "user"), key=key,
        actor=user_actor(wallet.owner_id),
    )  # fmt: skip
    args["amount"] = "50.00"
    args["step_up"] = {"required": True, "passed": False}
    out = run(admitted(wallet.owner_id, CREATE), "withdrawal_request", args, key=key, owner=wallet.owner_id)

    assert (out.status, jsonutil.loads(out.body)["code"]) == (401, "otp_required")
    assert balance(wallet.id)["held"] == 0


def test_step_up_amounts_are_per_currency(step_up_at_100):
    assert withdrawals.step_up_threshold("USD") == Decimal("5.00")
    assert withdrawals.step_up_threshold("NGN") == Decimal("100.00")
    assert withdrawals.needs_step_up("5.01", "USD") and not withdrawals.needs_step_up("5.00", "USD")
    assert not withdrawals.needs_step_up("1.001", "USD")  # the statement refuses it anyway


def test_key_rotation_re_encrypts_the_destination_and_it_still_pays_to_the_same_account(database_url):
    from ledgerline.crypto.columns import ENCRYPTED_COLUMNS
    from ledgerline.crypto.rotation import rotate

    [column] = [c for c in ENCRYPTED_COLUMNS if c.table == "withdrawals"]
    wallet = new_wallet("NGN", 100)
    w = requested(wallet, "10.00")
    before = bytes(withdrawal(w["id"])["account_number_ciphertext"])

    report = rotate(batch_size=50, columns=[column], settle_seconds=0)

    after = bytes(withdrawal(w["id"])["account_number_ciphertext"])
    assert report.status == "completed" and after != before
    assert (
        crypto.decrypt_field(after, table="withdrawals", column="account_number_ciphertext", row_id=w["id"]) == NUMBER
    )


@pytest.mark.parametrize("text", ["abc", "-1", "US=5", "NaN", "USD=Infinity"])
def test_a_step_up_setting_that_is_not_an_amount_is_refused_at_start(text):
    from ledgerline.config import parse_step_up

    with pytest.raises(ValueError, match="bad withdrawal step-up"):
        parse_step_up(text)
    assert parse_step_up("100000.00;usd=1000.00") == {"*": Decimal("100000.00"), "USD": Decimal("1000.00")}
