"""The escrow's rules beyond the machine's shape, against the real database: who may do
what (strangers see nothing), the funding wallet, the seller's wallet, the dispute
window, the fee rule (fee_quote), the database's own guard on escrows, and that no path
but an escrow's transitions moves its account's money (transfers, holds, adjustments,
reversals)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg2
import pytest

from ledgerline.db import transaction
from ledgerline.ledger import operations
from ledgerline.ledger.invariants import check_invariants
from ledgerline.ledger.sql import actor_json
from ledgerline.ledger.testing import TEST_ADMIN, new_wallet
from tests.integration.test_escrow_machine import (
    CURRENCY,
    Deal,
    audit_count,
    books,
    call,
    escrow_row,
    fee_schedule,  # noqa: F401  (the module's fee schedule)
    one,
)

# ------------------------------------------------------------------------------ opening


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"amount": "0.00"}, 422, "validation_error"),
        ({"amount": "1.001"}, 422, "validation_error"),
        ({"amount": "-5.00"}, 422, "validation_error"),
        ({"currency": "XXX"}, 422, "validation_error"),
        ({"description": "   "}, 422, "validation_error"),
        ({"seller_id": "self"}, 422, "validation_error"),
        ({"seller_id": str(uuid.uuid4())}, 422, "validation_error"),
    ],
)
def test_a_bad_escrow_is_refused_and_opens_nothing(database_url, change, status, code):
    deal = Deal()
    args = {"seller_id": str(deal.seller), "amount": "10.00", "currency": CURRENCY, "description": "a bicycle"}
    args |= change
    if args["seller_id"] == "self":
        args["seller_id"] = str(deal.buyer)
    escrows_before = one("SELECT count(*) AS n FROM escrows")["n"]
    accounts_before = one("SELECT count(*) AS n FROM accounts WHERE kind = 'escrow'")["n"]

    got, body = call(deal.buyer, "escrow_open", args)

    assert (got, body["code"]) == (status, code), body
    assert one("SELECT count(*) AS n FROM escrows")["n"] == escrows_before
    assert one("SELECT count(*) AS n FROM accounts WHERE kind = 'escrow'")["n"] == accounts_before


def test_an_escrow_has_an_account_of_its_own_that_nobody_owns(database_url):
    deal = Deal()
    escrow = deal.open("75.50")

    account = one("SELECT * FROM accounts WHERE id = %s", escrow["account_id"])
    assert account["kind"] == "escrow" and account["owner_id"] is None and account["currency"] == CURRENCY
    assert escrow["status"] == "AWAITING_PAYMENT" and escrow["allowed_transitions"] == ["FUNDED"]
    assert escrow["amount"] == {"amount": "75.50", "currency": CURRENCY}
    assert audit_count("escrow.created", escrow["id"]) == 1
    # It counts against nobody's accounts: the buyer's own are still just their wallet.
    assert one("SELECT count(*) AS n FROM accounts WHERE owner_id = %s", deal.buyer)["n"] == 1


# ------------------------------------------------------------------------------ who may


@pytest.mark.parametrize("op", ["escrow_fund", "escrow_release", "escrow_refund", "escrow_dispute"])
def test_a_stranger_is_told_the_escrow_does_not_exist(database_url, op):
    deal = Deal()
    escrow = deal.reach("FUNDED" if op != "escrow_fund" else "AWAITING_PAYMENT")
    stranger = new_wallet(CURRENCY, 1000)
    before, row = books(deal, escrow), escrow_row(escrow["id"])
    args = {"escrow_id": escrow["id"], "account_id": str(stranger.id), "reason": "not mine at all"}

    status, body = call(stranger.owner_id, op, args)

    assert (status, body["code"]) == (404, "not_found")
    assert body["detail"] == f"escrow {escrow['id']} not found"
    assert "allowed_transitions" not in body
    assert books(deal, escrow) == before and escrow_row(escrow["id"]) == row
    assert posted_of(stranger.id) == 1000
    missing, _ = call(stranger.owner_id, op, {**args, "escrow_id": str(uuid.uuid4())})
    assert missing == 404


def posted_of(account_id) -> Decimal:
    return Decimal(one("SELECT posted FROM balances WHERE account_id = %s", account_id)["posted"])


def test_the_wrong_party_is_refused_with_what_it_may_do(database_url):
    deal = Deal()
    escrow = deal.reach("FUNDED")

    status, body = deal.ask(escrow["id"], "REFUNDED", party="buyer")  # only the seller refunds
    assert (status, body["code"]) == (409, "invalid_state_transition")
    assert body["allowed_transitions"] == ["DISPUTED", "RELEASED"]
    status, body = deal.ask(escrow["id"], "RELEASED", party="seller")  # only the buyer releases
    assert (status, body["allowed_transitions"]) == (409, ["DISPUTED", "REFUNDED"])
    status, body = deal.ask(escrow["id"], "DISPUTED", party="seller")  # either may dispute
    assert status == 200 and body["dispute"]["raised_by"] == str(deal.seller)
    assert body["allowed_transitions"] == []  # only an administrator moves a disputed escrow


# ------------------------------------------------------------------------------ funding


def test_funding_needs_the_buyers_own_wallet_in_the_currency_with_the_funds(database_url):
    deal = Deal(funds="50.00")
    escrow = deal.open("80.00")
    other = new_wallet(CURRENCY, 1000)
    dollars = new_wallet("USD", 1000, owner_id=deal.buyer)
    row = escrow_row(escrow["id"])

    cases = [
        (deal.buyer_wallet.id, 409, "insufficient_funds"),
        (other.id, 404, "not_found"),  # someone else's wallet is not the buyer's to spend
        (dollars.id, 422, "validation_error"),
        (escrow["account_id"], 404, "not_found"),  # the escrow's own account is nobody's
        (uuid.uuid4(), 404, "not_found"),
    ]
    for account_id, status, code in cases:
        got, body = call(deal.buyer, "escrow_fund", {"escrow_id": escrow["id"], "account_id": str(account_id)})
        assert (got, body["code"]) == (status, code), (account_id, body)
        assert escrow_row(escrow["id"]) == row
    assert posted_of(deal.buyer_wallet.id) == 50 and posted_of(other.id) == 1000 and posted_of(dollars.id) == 1000
    assert audit_count("escrow.fund_failed", escrow["id"]) == len(cases)
    assert audit_count("escrow.funded", escrow["id"]) == 0


# ------------------------------------------------------------------------------ releasing


def test_a_seller_without_a_wallet_in_the_currency_cannot_be_paid_yet(database_url):
    deal = Deal(seller_wallet=False)
    escrow = deal.reach("FUNDED")
    before = books(deal, escrow)

    status, body = deal.ask(escrow["id"], "RELEASED")

    assert (status, body["code"]) == (409, "conflict")
    assert f"no active {CURRENCY} wallet" in body["detail"]
    assert books(deal, escrow) == before and escrow_row(escrow["id"])["body"]["status"] == "FUNDED"
    # Once the seller opens one, the release goes there: their oldest active one.
    first = new_wallet(CURRENCY, 0, owner_id=deal.seller)
    new_wallet(CURRENCY, 0, owner_id=deal.seller)
    status, body = deal.ask(escrow["id"], "RELEASED")
    assert status == 200
    assert posted_of(first.id) == Decimal(body["seller_amount"]["amount"]) > 0


def test_a_refund_goes_back_to_the_wallet_that_paid(database_url):
    deal = Deal(funds=300)
    second = new_wallet(CURRENCY, 500, owner_id=deal.buyer)
    escrow = deal.open("120.00")
    status, body = call(deal.buyer, "escrow_fund", {"escrow_id": escrow["id"], "account_id": str(second.id)})
    assert status == 200 and body["funded_from"] == str(second.id)

    status, body = deal.ask(escrow["id"], "REFUNDED")

    assert status == 200 and body["status"] == "REFUNDED"
    assert posted_of(second.id) == 500 and posted_of(deal.buyer_wallet.id) == 300
    assert body["fee"] is None and body["settle_transaction_id"]


# ------------------------------------------------------------------------------ disputes


def test_a_dispute_needs_a_reason_and_the_window(database_url, owner_conn):
    deal = Deal()
    escrow = deal.reach("FUNDED")

    status, body = deal.ask(escrow["id"], "DISPUTED", reason="no")
    assert (status, body["code"]) == (422, "validation_error")
    assert body["errors"][0]["field"] == "reason"

    with owner_conn.cursor() as cur:  # funded 31 days ago: the default window (30) has closed
        cur.execute("UPDATE escrows SET funded_at = funded_at - interval '31 days' WHERE id = %s", (escrow["id"],))
    status, body = deal.ask(escrow["id"], "DISPUTED", dispute_window_days=30)
    assert (status, body["code"]) == (409, "invalid_state_transition")
    assert "can no longer be disputed" in body["detail"]
    assert body["allowed_transitions"] == ["RELEASED"]  # for the buyer: only accepting is left
    assert one("SELECT count(*) AS n FROM disputes WHERE escrow_id = %s", escrow["id"])["n"] == 0
    # A longer window (the setting) lets it through.
    status, body = deal.ask(escrow["id"], "DISPUTED", dispute_window_days=60)
    assert status == 200 and body["status"] == "DISPUTED"


def test_resolving_records_the_outcome_and_the_reason(database_url):
    deal = Deal()
    escrow = deal.reach("DISPUTED")

    status, _ = deal.ask(escrow["id"], "RESOLVED_REFUNDED", reason="seller admitted it never shipped")

    assert status == 200
    dispute = one("SELECT * FROM disputes WHERE escrow_id = %s", escrow["id"])
    assert dispute["status"] == "resolved" and dispute["outcome"] == "refund"
    assert dispute["resolved_by"] == deal.admin and dispute["resolution_reason"] == "seller admitted it never shipped"
    row = one("SELECT metadata FROM audit_log WHERE action = 'dispute.resolved' AND resource_id = %s", escrow["id"])
    assert row["metadata"]["reason"] == "seller admitted it never shipped"
    assert row["metadata"]["transition"] == {"from": "DISPUTED", "to": "RESOLVED_REFUNDED", "action": "resolve",
                                             "party": "admin"}  # fmt: skip


# ------------------------------------------------------------------------------ fees


@pytest.mark.parametrize(
    ("schedule", "currency", "amount", "fee"),
    [
        (None, "GBP", "100.00", "0"),  # no schedule: no fee
        (("1.5", "0", "0", None), "GBP", "0.30", "0.00"),  # 0.0045 rounds to 0.00
        (("1.5", "0", "0", None), "GBP", "1.00", "0.02"),  # 0.015: half-up, not banker's (0.02 either way)
        (("2.5", "0", "0", None), "GBP", "0.30", "0.01"),  # 0.0075 -> 0.01
        (("0.25", "0", "0", None), "JPY", "1000", "3"),  # 2.5 -> 3 (banker's would say 2)
        (("0.25", "0", "0", None), "JPY", "1800", "5"),  # 4.5 -> 5 (banker's would say 4)
        (("1", "0.0005", "0", None), "KWD", "1.000", "0.011"),  # 0.0105 -> 0.011 (three decimals)
        (("10", "1.00", "5.00", "20.00"), "EUR", "10.00", "5.00"),  # raised to the minimum
        (("10", "1.00", "5.00", "20.00"), "EUR", "1000.00", "20.00"),  # lowered to the maximum
        (("10", "1.00", "5.00", "20.00"), "EUR", "3.00", "3.00"),  # never more than the amount
        (("10", "1.00", "0", None), "EUR", "123.45", "13.35"),  # 12.345 + 1 = 13.345 -> 13.35
    ],
)
def test_the_fee_rule(database_url, owner_conn, schedule, currency, amount, fee):
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM fee_schedules WHERE currency = %s AND transaction_kind = 'test_fee'", (currency,))
        if schedule:
            cur.execute(
                "INSERT INTO fee_schedules (currency, transaction_kind, percent, fixed, minimum, maximum) "
                "VALUES (%s, 'test_fee', %s, %s, %s, %s)",
                (currency, *schedule),
            )
    try:
        quoted = one("SELECT fee_quote(p_kind => 'test_fee', p_currency => %s, p_amount => %s) AS fee", currency,
                     Decimal(amount))["fee"]  # fmt: skip
    finally:
        with owner_conn.cursor() as cur:
            cur.execute("DELETE FROM fee_schedules WHERE currency = %s AND transaction_kind = 'test_fee'", (currency,))
    assert quoted == Decimal(fee)
    assert quoted + (Decimal(amount) - quoted) == Decimal(amount) and 0 <= quoted <= Decimal(amount)


def test_a_fee_as_large_as_the_amount_pays_the_seller_nothing_and_still_balances(database_url, owner_conn):
    deal = Deal(currency="GHS")
    with owner_conn.cursor() as cur:
        cur.execute("INSERT INTO fee_schedules (currency, transaction_kind, fixed) VALUES ('GHS', 'escrow_release', 5)")
    try:
        escrow = deal.reach("FUNDED", "3.00")
        before = books(deal, escrow)
        status, body = deal.ask(escrow["id"], "RELEASED")
    finally:
        with owner_conn.cursor() as cur:
            cur.execute("DELETE FROM fee_schedules WHERE currency = 'GHS' AND transaction_kind = 'escrow_release'")
    assert status == 200
    assert body["fee"]["amount"] == "3.00" and body["seller_amount"]["amount"] == "0.00"
    after = books(deal, escrow)
    assert after["fees"] - before["fees"] == 3 and after["seller"] == before["seller"] and after["escrow"] == 0
    legs = one("SELECT count(*) AS n FROM entries WHERE transaction_id = %s", body["settle_transaction_id"])["n"]
    assert legs == 2  # no zero leg to the seller


# ------------------------------------------------------------------------------ the guard


def test_the_database_refuses_any_status_change_the_machine_does_not_list(database_url, owner_conn):
    deal = Deal()
    funded = deal.reach("FUNDED")
    released = deal.reach("RELEASED")
    with owner_conn.cursor() as cur:
        for escrow_id, status in [(funded["id"], "AWAITING_PAYMENT"), (funded["id"], "RESOLVED_RELEASED"),
                                  (released["id"], "REFUNDED"), (released["id"], "FUNDED")]:  # fmt: skip
            with pytest.raises(psycopg2.Error, match="not a transition of the escrow machine"):
                cur.execute("UPDATE escrows SET status = %s WHERE id = %s", (status, escrow_id))
        # An edge of the machine, but terminal with money still in its account.
        with pytest.raises(psycopg2.Error, match="must be emptied and closed first"):
            cur.execute(
                "UPDATE escrows SET status = 'REFUNDED', settled_at = now(), settle_transaction_id = fund_transaction_id "
                "WHERE id = %s",
                (funded["id"],),
            )
        with pytest.raises(psycopg2.Error, match="never change"):
            cur.execute("UPDATE escrows SET amount = amount + 1 WHERE id = %s", (funded["id"],))
        with pytest.raises(psycopg2.Error, match="a settled escrow never changes"):
            cur.execute("UPDATE escrows SET fee = 0 WHERE id = %s", (released["id"],))
        with pytest.raises(psycopg2.Error, match="opened AWAITING_PAYMENT"):
            cur.execute(
                "INSERT INTO escrows (buyer_id, seller_id, currency, amount, description, status, account_id, "
                "created_by, funded_at, funded_from, fund_transaction_id) "
                "SELECT buyer_id, seller_id, currency, amount, description, 'FUNDED', account_id, created_by, "
                "funded_at, funded_from, fund_transaction_id FROM escrows WHERE id = %s",
                (funded["id"],),
            )
    assert escrow_row(funded["id"])["body"]["status"] == "FUNDED"


def test_the_application_role_cannot_write_escrows(database_url):
    deal = Deal()
    escrow = deal.reach("FUNDED")

    def write(cur):
        cur.execute("UPDATE escrows SET status = 'RELEASED' WHERE id = %s", (escrow["id"],))

    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        transaction(write)


# ------------------------------------------------------------------------------ only its transitions


def test_no_transfer_hold_adjustment_or_reversal_touches_an_escrows_money(database_url):
    deal = Deal()
    escrow = deal.reach("FUNDED")
    account = escrow["account_id"]
    wallet = deal.buyer_wallet
    admin = deal.admin
    before = books(deal, escrow)

    # A user: into it, out of it (as its buyer, who paid it), a hold on it.
    for args in (
        {"from_account_id": str(wallet.id), "to_account_id": account, "amount": "1.00", "currency": CURRENCY},
        {"from_account_id": account, "to_account_id": str(wallet.id), "amount": "1.00", "currency": CURRENCY},
    ):
        status, body = call_op(deal.buyer, "transfer", "functions.ledger.transfers_create", args)
        assert (status, body["code"]) == (404, "not_found"), body
    status, body = call_op(deal.buyer, "hold_create", "functions.ledger.holds_create",
                           {"account_id": account, "amount": "1.00", "currency": CURRENCY})  # fmt: skip
    assert (status, body["code"]) == (404, "not_found")
    # An administrator: an adjustment either way, a reversal of the escrow's funding.
    for direction in ("credit", "debit"):
        status, body = call_op(
            admin, "adjust", "functions.ledger.admin_adjustments_create",
            {"account_id": account, "amount": "1.00", "currency": CURRENCY, "direction": direction,
             "reason": "an attempt to move escrowed money"},
        )  # fmt: skip
        assert (status, body["code"]) == (409, "conflict"), body
        assert "only its escrow's transitions move its money" in body["detail"]
    fund_tx = escrow_row(escrow["id"])["body"]["fund_transaction_id"]
    status, body = call_op(admin, "reverse", "functions.ledger.admin_transactions_reverse",
                           {"transaction_id": fund_tx, "reason": "undo the escrow funding"})  # fmt: skip
    assert (status, body["code"]) == (409, "conflict"), body
    # The hold routine itself, as an administrative caller (no owner) would use it.
    hold = one(
        "SELECT ledger_hold_place(p_account => %s, p_currency => %s, p_amount => 1, "
        "p_expires_at => now() + interval '1 hour', p_actor => %s) AS r",
        account, CURRENCY, actor_json(TEST_ADMIN),
    )["r"]  # fmt: skip
    assert hold["refusal"]["code"] == "validation_error"

    assert books(deal, escrow) == before
    assert one("SELECT count(*) AS n FROM holds WHERE account_id = %s", account)["n"] == 0
    assert transaction(check_invariants) == []


def call_op(user_id, op, handler, args):
    """A money request to one of the ledger's own routes."""
    from ledgerline import idempotency, jsonutil, routes
    from ledgerline.auth import admission, sessions
    from ledgerline.caller import Request

    route = routes.by_handler(handler)
    amr = ["pwd", "otp"] if route.access is routes.Access.ADMIN else ["pwd"]
    session_id, _ = transaction(lambda cur: sessions.create_session(cur, user_id, sessions.Client(), amr=amr))
    claims = {"typ": "access", "sub": str(user_id), "jti": str(uuid.uuid4()), "sid": str(session_id), "amr": amr}
    prepared = admission.prepare(route, Request("r", "192.0.2.9", "tests", {}, None), claims)
    owner = user_id if route.access is routes.Access.USER else None
    out = idempotency.call(
        prepared, key=uuid.uuid4(), request_hash=jsonutil.canonical(args)[:64], operation=op,
        args=operations.by_name(op).arguments(args, owner=owner),
    )  # fmt: skip
    return out.status, jsonutil.loads(out.body)


# ------------------------------------------------------------------------------ audit


def test_every_escrow_and_dispute_action_is_audited_in_the_escrow_category(database_url):
    """Each operation's success and refusal actions are written, as escrow rows, with the
    escrow and both parties as subjects on success (the parties' activity feeds)."""
    deal = Deal()
    ops = [op for op in operations.OPERATIONS if op.name.startswith("escrow_")]
    assert {op.name for op in ops} == {"escrow_open", "escrow_fund", "escrow_release", "escrow_refund",
                                       "escrow_dispute", "escrow_resolve"}  # fmt: skip
    released, refunded = deal.reach("RELEASED"), deal.reach("REFUNDED")
    resolved = deal.reach("RESOLVED_RELEASED")
    for escrow in (released, refunded, resolved):  # every edge of a settled escrow is refused now
        for target in ("FUNDED", "RELEASED", "REFUNDED", "DISPUTED", "RESOLVED_REFUNDED"):
            assert deal.ask(escrow["id"], target)[0] == 409
    bad, _ = call(deal.buyer, "escrow_open", {"seller_id": str(deal.buyer), "amount": "1.00", "currency": CURRENCY,
                                              "description": "to myself"})  # fmt: skip
    assert bad == 422

    def rows(cur):
        cur.execute(
            """
            SELECT action, category, resource_type, resource_id, subject_ids FROM audit_log
             WHERE actor_id IN (%s, %s, %s)
            """,
            (deal.buyer, deal.seller, deal.admin),
        )
        return cur.fetchall()

    written = transaction(rows)
    actions = {r["action"] for r in written}
    for op in ops:
        assert op.done in actions and op.failed in actions, op
    for r in written:
        if r["action"].split(".")[0] in ("escrow", "dispute"):
            assert r["category"] == "escrow"
        if r["action"] in {op.done for op in ops}:
            assert r["resource_type"] == "escrow" and set(r["subject_ids"]) >= {deal.buyer, deal.seller}


def test_the_ledger_check_finds_a_settled_escrow_that_still_holds_money(database_url, owner_conn):
    """Only possible past the guard (here: the owner turns it off for a moment): the ledger
    check is the net under the net."""
    deal = Deal()
    escrow = deal.reach("FUNDED")
    other = deal.reach("REFUNDED")
    settle_tx = escrow_row(other["id"])["body"]["fund_transaction_id"]  # any transaction, for the CHECKs
    with owner_conn.cursor() as cur:
        cur.execute("ALTER TABLE escrows DISABLE TRIGGER escrows_guard")
        try:
            cur.execute(
                "UPDATE escrows SET status = 'REFUNDED', settled_at = now(), settle_transaction_id = %s WHERE id = %s",
                (settle_tx, escrow["id"]),
            )
            found = [f for f in transaction(check_invariants) if f.invariant == "settled_escrow_empty_and_closed"]
        finally:
            cur.execute(
                "UPDATE escrows SET status = 'FUNDED', settled_at = NULL, settle_transaction_id = NULL WHERE id = %s",
                (escrow["id"],),
            )
            cur.execute("ALTER TABLE escrows ENABLE TRIGGER escrows_guard")
    assert [f.data["escrow_id"] for f in found] == [escrow["id"]]
    assert "is REFUNDED but its account is active with 200.0000 posted" in found[0].detail
    assert transaction(check_invariants) == []


def test_no_owner_opens_an_escrow_account_of_their_own(database_url):
    from ledgerline import errors
    from ledgerline.ledger.accounts import open_account
    from ledgerline.ledger.testing import create_user, user_actor

    def work(cur):
        owner = create_user(cur)
        open_account(cur, owner_id=owner, currency=CURRENCY, actor=user_actor(owner), kind="escrow")

    with pytest.raises(errors.ValidationFailed, match="only wallets"):
        transaction(work)
