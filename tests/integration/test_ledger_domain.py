"""The ledger's domain functions against the real database: transfers, holds,
reversals, adjustments, balances now and in the past, entry history, checks."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg2
import pytest

from ledgerline import errors, ledger
from ledgerline.db import transaction
from ledgerline.ledger import Leg
from ledgerline.ledger.model import USER_CREDITABLE_KINDS
from ledgerline.ledger.testing import TEST_ADMIN, create_user, new_wallet, user_actor


def tx(fn):
    return transaction(fn)


def pay(src, dst, amount, *, currency=None, owner_id=None, **kw):
    return tx(
        lambda cur: ledger.transfer(
            cur,
            from_account_id=src.id,
            to_account_id=dst.id,
            amount=Decimal(amount),
            currency=currency or src.currency,
            actor=user_actor(src.owner_id),
            owner_id=owner_id,
            **kw,
        )
    )


def balance(account):
    return tx(lambda cur: ledger.get_account(cur, account.id)).balance


def audit_actions(resource_id):
    def read(cur):
        cur.execute("SELECT action FROM audit_log WHERE resource_id = %s ORDER BY occurred_at, id", (str(resource_id),))
        return [r["action"] for r in cur.fetchall()]

    return tx(read)


@pytest.fixture(autouse=True)
def books_stay_right(database_url):
    """After every test here, the whole ledger still satisfies every invariant."""
    yield
    findings = tx(ledger.check_invariants)
    assert findings == [], findings


# Transfers -------------------------------------------------------------------------------------


def test_transfer_moves_money_and_records_balance_after_on_both_sides(database_url):
    src, dst = new_wallet("NGN", "100.00"), new_wallet("NGN")
    t = pay(src, dst, "30.50", description="rent share")
    assert (t.amount, t.currency, t.from_account_id, t.to_account_id) == (Decimal("30.50"), "NGN", src.id, dst.id)
    assert balance(src).posted == Decimal("69.50")
    assert balance(dst).posted == Decimal("30.50")
    full = tx(lambda cur: ledger.get_transaction(cur, t.id))
    assert sorted((e.amount, e.balance_after) for e in full.entries) == [
        (Decimal("-30.50"), Decimal("69.50")),
        (Decimal("30.50"), Decimal("30.50")),
    ]
    assert {e.counterpart_id for e in full.entries} == {src.id, dst.id}
    assert audit_actions(t.id) == ["transfer.completed"]


def test_transfer_audit_row_carries_balances_before_and_after(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    t = pay(src, dst, "40")

    def read(cur):
        cur.execute(
            "SELECT payload_before, payload_after, actor_id FROM audit_log WHERE resource_id = %s AND action = 'transfer.completed'",
            (str(t.id),),
        )
        return cur.fetchone()

    row = tx(read)
    assert row["actor_id"] == src.owner_id
    assert Decimal(str(row["payload_before"]["balances"][str(src.id)])) == Decimal("100")
    assert Decimal(str(row["payload_after"]["balances"][str(src.id)])) == Decimal("60")
    assert len(row["payload_after"]["entries"]) == 2


def test_insufficient_funds_is_refused_and_nothing_moves(database_url):
    src, dst = new_wallet("NGN", "10.00"), new_wallet("NGN")
    with pytest.raises(errors.InsufficientFunds, match="available"):
        pay(src, dst, "10.01")
    assert balance(src).posted == Decimal("10.00")
    assert balance(dst).posted == Decimal("0")


def test_transfer_to_the_same_account_is_refused(database_url):
    src = new_wallet("NGN", 10)
    with pytest.raises(errors.ValidationFailed, match="same account"):
        pay(src, src, "1")


def test_transfer_in_a_currency_other_than_the_accounts_is_refused(database_url):
    src, dst = new_wallet("NGN", 10), new_wallet("NGN")
    with pytest.raises(errors.ValidationFailed, match="holds NGN, not USD"):
        pay(src, dst, "1", currency="USD")


def test_transfer_between_currencies_is_refused(database_url):
    src, dst = new_wallet("NGN", 10), new_wallet("USD")
    with pytest.raises(errors.ValidationFailed, match="holds USD, not NGN"):
        pay(src, dst, "1")


def test_transfer_from_someone_elses_account_is_not_found(database_url):
    src, dst = new_wallet("NGN", 10), new_wallet("NGN")
    with pytest.raises(errors.NotFound):
        pay(src, dst, "1", owner_id=dst.owner_id)
    assert balance(src).posted == Decimal("10")


def test_transfer_to_an_unknown_account_is_not_found(database_url):
    src = new_wallet("NGN", 10)
    ghost = ledger.Account(
        uuid.uuid4(), None, "user_wallet", "NGN", "x", "active", False, False, datetime.now(UTC), src.balance
    )
    with pytest.raises(errors.NotFound):
        pay(src, ghost, "1")


def test_users_cannot_pay_into_system_accounts(database_url):
    src = new_wallet("NGN", 10)
    fees = tx(lambda cur: ledger.system_account(cur, "fees_revenue", "NGN"))
    with pytest.raises(errors.NotFound) as caught:
        pay(src, fees, "1", owner_id=src.owner_id, credit_kinds=USER_CREDITABLE_KINDS)
    assert caught.value.detail == f"account {fees.id} not found"  # exactly as if it did not exist


@pytest.mark.parametrize("status", ["frozen", "closed"])
def test_frozen_or_closed_accounts_neither_send_nor_receive(database_url, status):
    src, dst = new_wallet("NGN", 10), new_wallet("NGN")
    if status == "frozen":
        tx(lambda cur: ledger.freeze(cur, dst.id, actor=TEST_ADMIN, reason="kyc review"))
    else:
        tx(lambda cur: ledger.close(cur, dst.id, actor=TEST_ADMIN, reason="customer asked"))
    with pytest.raises(errors.Conflict, match=status):
        pay(src, dst, "1")
    with pytest.raises(errors.Conflict, match=status):
        pay(dst, src, "1")
    assert balance(src).posted == Decimal("10")


def test_unfreeze_restores_an_account_and_every_change_is_audited(database_url):
    src, dst = new_wallet("NGN", 10), new_wallet("NGN")
    tx(lambda cur: ledger.freeze(cur, src.id, actor=TEST_ADMIN, reason="suspicious"))
    with pytest.raises(errors.InvalidStateTransition, match="already frozen"):
        tx(lambda cur: ledger.freeze(cur, src.id, actor=TEST_ADMIN))
    account = tx(lambda cur: ledger.unfreeze(cur, src.id, actor=TEST_ADMIN, reason="cleared"))
    assert account.status == "active"
    pay(src, dst, "1")
    assert audit_actions(src.id) == ["ledger.account.opened", "admin.account.frozen", "admin.account.unfrozen"]


def test_an_account_with_money_cannot_be_closed_and_a_closed_one_stays_closed(database_url):
    wallet = new_wallet("NGN", 5)
    with pytest.raises(errors.Conflict, match="still has a balance"):
        tx(lambda cur: ledger.close(cur, wallet.id, actor=TEST_ADMIN))
    empty = new_wallet("NGN")
    tx(lambda cur: ledger.close(cur, empty.id, actor=TEST_ADMIN))
    with pytest.raises(errors.InvalidStateTransition, match="already closed"):
        tx(lambda cur: ledger.unfreeze(cur, empty.id, actor=TEST_ADMIN))


# Multi-leg postings --------------------------------------------------------------------------------


def test_multi_leg_transaction_with_a_fee_posts_atomically(database_url):
    buyer, seller = new_wallet("NGN", 1000), new_wallet("NGN")
    fees = tx(lambda cur: ledger.system_account(cur, "fees_revenue", "NGN"))
    fees_before = fees.balance.posted
    t = tx(
        lambda cur: ledger.post_transaction(
            cur,
            kind="purchase",
            legs=[
                Leg(buyer.id, Decimal("-500"), "NGN"),
                Leg(seller.id, Decimal("492.50"), "NGN"),
                Leg(fees.id, Decimal("7.50"), "NGN", entry_type="fee"),
            ],
            actor=user_actor(buyer.owner_id),
        )
    )
    assert len(t.entries) == 3
    assert [e.balance_after is None for e in sorted(t.entries, key=lambda e: e.amount)] == [False, True, False]
    assert balance(buyer).posted == Decimal("500")
    assert balance(seller).posted == Decimal("492.50")
    assert tx(lambda cur: ledger.get_account(cur, fees.id)).balance.posted == fees_before + Decimal("7.50")


def test_unbalanced_legs_are_refused_before_reaching_the_database(database_url):
    a, b = new_wallet("NGN", 10), new_wallet("NGN")
    with pytest.raises(errors.ValidationFailed, match="sum to zero"):
        tx(
            lambda cur: ledger.post_transaction(
                cur,
                kind="transfer",
                legs=[Leg(a.id, Decimal("-5"), "NGN"), Leg(b.id, Decimal("4"), "NGN")],
                actor=TEST_ADMIN,
            )
        )


def test_external_reference_is_posted_at_most_once(database_url):
    a, b = new_wallet("NGN", 10), new_wallet("NGN")
    ref = f"psk_{uuid.uuid4().hex}"
    pay(a, b, "1", reference=ref)
    with pytest.raises(errors.Conflict, match="reference"):
        pay(a, b, "1", reference=ref)
    assert balance(a).posted == Decimal("9")


# Holds ------------------------------------------------------------------------------------------------


def place_hold(account, amount, **kw):
    return tx(
        lambda cur: ledger.create_hold(
            cur,
            account_id=account.id,
            amount=Decimal(amount),
            currency=account.currency,
            actor=user_actor(account.owner_id),
            **kw,
        )
    )


def test_hold_reduces_available_but_not_posted(database_url):
    wallet = new_wallet("NGN", 100)
    hold = place_hold(wallet, "40")
    assert hold.status == "active"
    b = balance(wallet)
    assert (b.posted, b.held, b.available) == (Decimal("100"), Decimal("40"), Decimal("60"))
    with pytest.raises(errors.InsufficientFunds):
        pay(wallet, new_wallet("NGN"), "60.01")
    with pytest.raises(errors.InsufficientFunds):
        place_hold(wallet, "60.01")


def test_partial_capture_posts_part_and_releases_the_rest(database_url):
    wallet, merchant = new_wallet("NGN", 100), new_wallet("NGN")
    hold = place_hold(wallet, "40")
    captured, t = tx(
        lambda cur: ledger.capture_hold(
            cur, hold.id, to_account_id=merchant.id, amount=Decimal("25"), actor=user_actor(wallet.owner_id)
        )
    )
    assert (captured.status, captured.captured_amount, captured.transaction_id) == ("posted", Decimal("25"), t.id)
    b = balance(wallet)
    assert (b.posted, b.held) == (Decimal("75"), Decimal("0"))
    assert balance(merchant).posted == Decimal("25")
    with pytest.raises(errors.InvalidStateTransition, match="posted"):
        tx(lambda cur: ledger.capture_hold(cur, hold.id, to_account_id=merchant.id, actor=TEST_ADMIN))
    with pytest.raises(errors.InvalidStateTransition, match="posted"):
        tx(lambda cur: ledger.void_hold(cur, hold.id, actor=TEST_ADMIN))
    assert audit_actions(hold.id) == ["hold.created", "hold.captured"]


def test_full_capture_by_default(database_url):
    wallet, merchant = new_wallet("USD", "12.34"), new_wallet("USD")
    hold = place_hold(wallet, "12.34")
    captured, _ = tx(lambda cur: ledger.capture_hold(cur, hold.id, to_account_id=merchant.id, actor=TEST_ADMIN))
    assert captured.captured_amount == Decimal("12.34")
    assert balance(wallet).posted == Decimal("0")


def test_capture_cannot_exceed_the_hold(database_url):
    wallet, merchant = new_wallet("NGN", 100), new_wallet("NGN")
    hold = place_hold(wallet, "10")
    with pytest.raises(errors.ValidationFailed, match="at most the held"):
        tx(
            lambda cur: ledger.capture_hold(
                cur, hold.id, to_account_id=merchant.id, amount=Decimal("10.01"), actor=TEST_ADMIN
            )
        )
    assert balance(wallet).held == Decimal("10")


def test_void_releases_the_hold_and_nothing_moves(database_url):
    wallet = new_wallet("NGN", 100)
    hold = place_hold(wallet, "70")
    voided = tx(lambda cur: ledger.void_hold(cur, hold.id, actor=user_actor(wallet.owner_id), owner_id=wallet.owner_id))
    assert voided.status == "voided"
    b = balance(wallet)
    assert (b.posted, b.held) == (Decimal("100"), Decimal("0"))


def test_someone_elses_hold_is_not_found(database_url):
    wallet, other = new_wallet("NGN", 100), new_wallet("NGN")
    hold = place_hold(wallet, "5")
    with pytest.raises(errors.NotFound):
        tx(lambda cur: ledger.void_hold(cur, hold.id, actor=TEST_ADMIN, owner_id=other.owner_id))
    with pytest.raises(errors.NotFound):
        tx(lambda cur: ledger.get_hold(cur, hold.id, owner_id=other.owner_id))


def test_expiry_sweep_expires_due_holds_only(database_url):
    wallet = new_wallet("NGN", 100)
    soon = place_hold(wallet, "10", expires_in_seconds=1)
    later = place_hold(wallet, "20", expires_in_seconds=3600)
    time.sleep(1.05)
    expired = tx(lambda cur: ledger.expire_due(cur))
    assert expired >= 1
    assert tx(lambda cur: ledger.get_hold(cur, soon.id)).status == "expired"
    assert tx(lambda cur: ledger.get_hold(cur, later.id)).status == "active"
    assert balance(wallet).held == Decimal("20")
    with pytest.raises(errors.InvalidStateTransition, match="expired"):
        tx(lambda cur: ledger.capture_hold(cur, soon.id, to_account_id=new_wallet("NGN").id, actor=TEST_ADMIN))


def test_a_hold_past_its_expiry_cannot_be_captured_even_before_the_sweep(database_url):
    wallet = new_wallet("NGN", 100)
    hold = place_hold(wallet, "10", expires_in_seconds=1)
    time.sleep(1.05)
    with pytest.raises(errors.InvalidStateTransition, match="expired at"):
        tx(lambda cur: ledger.capture_hold(cur, hold.id, to_account_id=new_wallet("NGN").id, actor=TEST_ADMIN))


def test_holds_are_only_placed_on_wallets(database_url):
    clearing = tx(lambda cur: ledger.system_account(cur, "payout_clearing", "NGN"))
    with pytest.raises(errors.ValidationFailed, match="wallet accounts only"):
        tx(
            lambda cur: ledger.create_hold(
                cur, account_id=clearing.id, amount=Decimal(1), currency="NGN", actor=TEST_ADMIN
            )
        )


def test_capture_into_a_hot_system_account_for_payouts(database_url):
    wallet = new_wallet("NGN", 100)
    clearing = tx(lambda cur: ledger.system_account(cur, "payout_clearing", "NGN"))
    hold = place_hold(wallet, "60")
    captured, t = tx(lambda cur: ledger.capture_hold(cur, hold.id, to_account_id=clearing.id, actor=TEST_ADMIN))
    assert captured.status == "posted"
    assert {e.account_id for e in t.entries} == {wallet.id, clearing.id}
    assert balance(wallet).posted == Decimal("40")


# Reversals and adjustments ------------------------------------------------------------------------------


def test_reversal_mirrors_the_transaction_and_leaves_it_untouched(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    t = pay(src, dst, "30")
    r = tx(lambda cur: ledger.reverse(cur, t.id, reason="sent in error", actor=TEST_ADMIN))
    assert r.kind == "reversal" and r.reverses == t.id
    assert sorted((e.account_id, e.amount) for e in r.entries) == sorted(
        [(src.id, Decimal("30")), (dst.id, Decimal("-30"))]
    )
    assert balance(src).posted == Decimal("100")
    assert balance(dst).posted == Decimal("0")
    original = tx(lambda cur: ledger.get_transaction(cur, t.id))
    assert original.reversed_by == r.id
    assert sorted(e.amount for e in original.entries) == [Decimal("-30"), Decimal("30")]
    assert tx(lambda cur: ledger.get_transfer(cur, t.id)).to_json()["status"] == "reversed"
    assert "ledger.transaction.reversed" in audit_actions(t.id)


def test_a_transaction_is_reversed_once_and_a_reversal_is_not_reversed(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    t = pay(src, dst, "30")
    r = tx(lambda cur: ledger.reverse(cur, t.id, reason="sent in error", actor=TEST_ADMIN))
    with pytest.raises(errors.InvalidStateTransition, match="already reversed"):
        tx(lambda cur: ledger.reverse(cur, t.id, reason="again", actor=TEST_ADMIN))
    with pytest.raises(errors.InvalidStateTransition, match="is a reversal"):
        tx(lambda cur: ledger.reverse(cur, r.id, reason="undo the undo", actor=TEST_ADMIN))


def test_reversal_that_would_overdraw_the_payee_is_refused(database_url):
    src, dst, third = new_wallet("NGN", 100), new_wallet("NGN"), new_wallet("NGN")
    t = pay(src, dst, "30")
    pay(dst, third, "20")
    with pytest.raises(errors.InsufficientFunds):
        tx(lambda cur: ledger.reverse(cur, t.id, reason="sent in error", actor=TEST_ADMIN))


def test_reversal_needs_a_reason_and_an_existing_transaction(database_url):
    with pytest.raises(errors.ValidationFailed, match="reason"):
        tx(lambda cur: ledger.reverse(cur, uuid.uuid4(), reason=" ", actor=TEST_ADMIN))
    with pytest.raises(errors.NotFound):
        tx(lambda cur: ledger.reverse(cur, uuid.uuid4(), reason="because", actor=TEST_ADMIN))


def test_adjustments_credit_and_debit_against_the_adjustments_account(database_url):
    wallet = new_wallet("GHS")
    adj = tx(lambda cur: ledger.system_account(cur, "adjustments", "GHS"))
    credit = tx(
        lambda cur: ledger.adjust(
            cur,
            account_id=wallet.id,
            amount=Decimal("50"),
            currency="GHS",
            direction="credit",
            reason="goodwill",
            actor=TEST_ADMIN,
        )
    )
    assert {e.account_id for e in credit.entries} == {wallet.id, adj.id}
    tx(
        lambda cur: ledger.adjust(
            cur,
            account_id=wallet.id,
            amount=Decimal("20"),
            currency="GHS",
            direction="debit",
            reason="fee correction",
            actor=TEST_ADMIN,
        )
    )
    assert balance(wallet).posted == Decimal("30")
    with pytest.raises(errors.InsufficientFunds):
        tx(
            lambda cur: ledger.adjust(
                cur,
                account_id=wallet.id,
                amount=Decimal("31"),
                currency="GHS",
                direction="debit",
                reason="too much",
                actor=TEST_ADMIN,
            )
        )


# Balances and history -------------------------------------------------------------------------------------


def db_now():
    return tx(lambda cur: (cur.execute("SELECT clock_timestamp() AS t"), cur.fetchone()["t"])[1])


def test_balance_at_a_past_instant(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    t0 = db_now()
    pay(src, dst, "10")
    t1 = db_now()
    pay(src, dst, "15")
    t2 = db_now()

    def at(account, when):
        return tx(lambda cur: ledger.balance_at(cur, ledger.get_account(cur, account.id), when))

    assert [at(src, t) for t in (t0, t1, t2)] == [Decimal("100"), Decimal("90"), Decimal("75")]
    assert [at(dst, t) for t in (t0, t1, t2)] == [Decimal("0"), Decimal("10"), Decimal("25")]
    assert at(src, t0 - timedelta(days=1)) == Decimal("0")


def test_balance_at_uses_balance_after_not_a_sum(database_url):
    src = new_wallet("NGN", 100)
    account = tx(lambda cur: ledger.get_account(cur, src.id))

    def plan(cur):
        # On a table this small the planner may prefer a scan; the question is whether
        # one probe of the (account_id, created_at) index can answer it.
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        cur.execute(
            """
            EXPLAIN SELECT balance_after FROM entries WHERE account_id = %s AND created_at <= now()
             ORDER BY created_at DESC, account_version DESC LIMIT 1
            """,
            (account.id,),
        )
        return "\n".join(r["QUERY PLAN"] for r in cur.fetchall())

    text = tx(plan)
    assert "Index Scan Backward using entries_account_time" in text
    assert "Aggregate" not in text


def test_query_balance_is_audited_and_refuses_the_future_and_naive_times(database_url):
    wallet = new_wallet("NGN", 12)
    actor = user_actor(wallet.owner_id)
    report = tx(lambda cur: ledger.query_balance(cur, wallet.id, actor=actor, owner_id=wallet.owner_id))
    assert report["posted"] == {"amount": "12.00", "currency": "NGN"}
    assert "ledger.balance.queried" in audit_actions(wallet.id)
    with pytest.raises(errors.ValidationFailed, match="future"):
        tx(lambda cur: ledger.query_balance(cur, wallet.id, actor=actor, at=datetime.now(UTC) + timedelta(hours=1)))
    with pytest.raises(errors.ValidationFailed, match="time zone"):
        tx(lambda cur: ledger.query_balance(cur, wallet.id, actor=actor, at=datetime(2020, 1, 1)))
    with pytest.raises(errors.NotFound):
        tx(lambda cur: ledger.query_balance(cur, wallet.id, actor=actor, owner_id=uuid.uuid4()))


def test_entry_history_pages_newest_first_without_gaps_or_repeats(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    for i in range(7):
        pay(src, dst, str(i + 1))
    seen, cursor = [], None
    while True:
        page, cursor = tx(lambda cur, c=cursor: ledger.list_entries(cur, src.id, limit=3, cursor=c))
        seen.extend(page)
        if cursor is None:
            break
    assert len(seen) == 8  # the funding adjustment and seven transfers
    assert len({e.id for e in seen}) == 8
    assert [e.created_at for e in seen] == sorted((e.created_at for e in seen), reverse=True)
    assert seen[0].balance_after == Decimal("72")
    with pytest.raises(errors.ValidationFailed, match="cursor"):
        tx(lambda cur: ledger.list_entries(cur, src.id, cursor="garbage!"))


def test_accounts_list_only_the_owners(database_url):
    owner = tx(create_user)
    mine = [new_wallet(c, owner_id=owner) for c in ("NGN", "USD", "EUR")]
    new_wallet("NGN")
    page, cursor = tx(lambda cur: ledger.list_accounts(cur, owner_id=owner, limit=2))
    rest, end = tx(lambda cur: ledger.list_accounts(cur, owner_id=owner, limit=2, cursor=cursor))
    assert [a.id for a in page + rest] == [a.id for a in mine]
    assert end is None


# Hot accounts, invariant checks, rebuild ---------------------------------------------------------------------


def test_fold_moves_hot_deltas_into_the_cached_balance_without_changing_it(database_url):
    new_wallet("ZAR", 5)
    adj = tx(lambda cur: ledger.system_account(cur, "adjustments", "ZAR"))
    tx(ledger.fold)

    def deltas(cur):
        cur.execute("SELECT count(*) AS n FROM balance_deltas WHERE account_id = %s", (adj.id,))
        return cur.fetchone()["n"]

    assert tx(deltas) == 0
    assert tx(lambda cur: ledger.get_account(cur, adj.id)).balance.posted == adj.balance.posted


def test_check_finds_a_tampered_balance_and_rebuild_repairs_it(database_url, owner_conn):
    wallet = new_wallet("EGP", 40)
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE balances SET posted = posted + 1 WHERE account_id = %s", (wallet.id,))
    findings = tx(ledger.check_invariants)
    assert {f.invariant for f in findings} == {"cached_balance_matches_entries", "balance_after_matches_cached"}
    assert all(f.data["account_id"] == str(wallet.id) for f in findings)
    assert tx(ledger.rebuild_balances) == 1
    assert tx(ledger.check_invariants) == []
    assert balance(wallet).posted == Decimal("40")


def test_numeric_overflow_of_a_balance_is_a_validation_error(database_url):
    big = Decimal("999999999999999")
    a, b = new_wallet("KWD", big), new_wallet("KWD", big)
    with pytest.raises(errors.ValidationFailed, match="too large"):
        pay(a, b, "999999999999999")
    assert balance(b).posted == big
    # The KWD adjustments account now holds -2e15: beyond one amount, still foldable.
    tx(ledger.fold)
    assert tx(lambda cur: ledger.system_account(cur, "adjustments", "KWD")).balance.posted <= -2 * big


def test_database_errors_that_are_not_refusals_still_surface(database_url):
    with pytest.raises(psycopg2.Error):
        tx(
            lambda cur: cur.execute(
                "SELECT ledger_post_legs(p_kind => 'x', p_accounts => NULL, p_currencies => NULL, p_amounts => NULL,"
                " p_entry_types => NULL, p_counterparts => NULL, p_actor => '{}'::jsonb, p_id => 'nope')"
            )
        )


# Audit payloads --------------------------------------------------------------------------------------


def audit_payloads(resource_id):
    def read(cur):
        cur.execute(
            "SELECT action, payload_before, payload_after FROM audit_log WHERE resource_id = %s ORDER BY occurred_at, id",
            (str(resource_id),),
        )
        return {r["action"]: (r["payload_before"], r["payload_after"]) for r in cur.fetchall()}

    return tx(read)


def test_every_hold_and_status_change_says_what_it_changed_in_its_audit_row(database_url):
    # Rows whose function hands ledger_audit the before/after (holds, freezes) once lost
    # them unless the row was also a posting's: a capture's trail had no transaction.
    wallet, merchant, other = new_wallet("NGN", 100), new_wallet("NGN"), new_wallet("NGN", 50)
    hold = place_hold(wallet, "40")
    _, t = tx(lambda cur: ledger.capture_hold(cur, hold.id, to_account_id=merchant.id, actor=TEST_ADMIN))
    released = place_hold(other, "5")
    tx(lambda cur: ledger.void_hold(cur, released.id, actor=TEST_ADMIN))
    tx(lambda cur: ledger.freeze(cur, other.id, actor=TEST_ADMIN, reason="kyc review"))

    created_before, created_after = audit_payloads(hold.id)["hold.created"]
    captured_before, captured_after = audit_payloads(hold.id)["hold.captured"]
    voided_before, voided_after = audit_payloads(released.id)["hold.voided"]
    frozen_before, frozen_after = audit_payloads(other.id)["admin.account.frozen"]

    assert created_before["balance"]["held"] == 0 and created_after["hold"]["id"] == str(hold.id)
    assert captured_before["hold"]["status"] == "active" and captured_after["hold"]["status"] == "posted"
    assert captured_after["transaction"]["id"] == str(t.id)
    assert {e["account_id"] for e in captured_after["transaction"]["entries"]} == {str(wallet.id), str(merchant.id)}
    assert (voided_before["hold"]["status"], voided_after["hold"]["status"]) == ("active", "voided")
    assert (frozen_before["status"], frozen_after["status"]) == ("active", "frozen")
