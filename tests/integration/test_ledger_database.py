"""The ledger's invariants are enforced by PostgreSQL itself: raw SQL, as the application
role and as the owner role, cannot break them."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg2
import psycopg2.errors
import psycopg2.extras
import pytest

from ledgerline import money
from ledgerline.db import transaction
from ledgerline.ledger import get_account, system_account, transfer
from ledgerline.ledger.testing import new_wallet, user_actor


@pytest.fixture
def owner(owner_conn):
    """A connection acting as the migration owner role (not a superuser)."""
    owner_conn.autocommit = False
    with owner_conn.cursor() as cur:
        cur.execute("SET ROLE ledgerline_owner")
    owner_conn.commit()
    yield owner_conn
    owner_conn.rollback()


@pytest.fixture
def app(app_conn):
    app_conn.autocommit = False
    yield app_conn
    app_conn.rollback()


def run(conn, *statements):
    """Run statements in one transaction and commit; roll back and re-raise on error."""
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            for sql, params in statements:
                cur.execute(sql, params)
        conn.commit()
    except psycopg2.Error:
        conn.rollback()
        raise


def raw_transaction(conn, legs, *, kind="transfer"):
    """Insert a transaction and its entries with plain INSERTs."""
    tid = uuid.uuid4()
    statements = [("INSERT INTO transactions (id, kind, actor_type) VALUES (%s, %s, 'system')", (tid, kind))]
    for account_id, currency, amount in legs:
        statements.append(
            (
                "INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type) VALUES (%s, %s, %s, %s, 'test')",
                (tid, account_id, currency, Decimal(amount)),
            )
        )
    run(conn, *statements)
    return tid


def balance_row(conn, account_id):
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("SELECT posted, held, version FROM balances WHERE account_id = %s", (account_id,))
        row = cur.fetchone()
    conn.commit()
    return row


def posted_transfer(database_url, amount="10"):
    src = new_wallet("NGN", 100)
    dst = new_wallet("NGN")
    t = transaction(
        lambda cur: transfer(
            cur,
            from_account_id=src.id,
            to_account_id=dst.id,
            amount=Decimal(amount),
            currency="NGN",
            actor=user_actor(src.owner_id),
        )
    )
    return src, dst, t


# Invariant 1: immutability -----------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entries SET amount = amount * 2 WHERE transaction_id = %s",
        "DELETE FROM entries WHERE transaction_id = %s",
        "UPDATE transactions SET description = 'edited' WHERE id = %s",
        "DELETE FROM transactions WHERE id = %s",
    ],
)
def test_app_role_cannot_change_or_delete_posted_money(database_url, app, statement):
    _, _, t = posted_transfer(database_url)
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        run(app, (statement, (t.id,)))


@pytest.mark.parametrize("table", ["entries", "transactions", "balances", "holds"])
def test_app_role_cannot_truncate_ledger_tables(database_url, app, table):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        run(app, (f"TRUNCATE {table}", None))


def test_app_role_cannot_write_entries_or_balances_directly(database_url, app):
    src, dst, _ = posted_transfer(database_url)
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        raw_transaction(app, [(src.id, "NGN", "-1"), (dst.id, "NGN", "1")])
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        run(app, ("UPDATE balances SET posted = posted + 1000 WHERE account_id = %s", (src.id,)))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entries SET amount = amount * 2 WHERE transaction_id = %s",
        "DELETE FROM entries WHERE transaction_id = %s",
        "UPDATE transactions SET description = 'edited' WHERE id = %s",
        "DELETE FROM transactions WHERE id = %s",
    ],
)
def test_even_the_owner_cannot_change_or_delete_posted_money(database_url, owner, statement):
    _, _, t = posted_transfer(database_url)
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="append-only"):
        run(owner, (statement, (t.id,)))


def test_even_the_owner_cannot_truncate_entries(database_url, owner):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="append-only"):
        run(owner, ("TRUNCATE entries CASCADE", None))


# Invariant 2: every transaction balances ------------------------------------------------


def test_unbalanced_transaction_is_rejected_at_commit(database_url, owner):
    src = new_wallet("NGN", 100)
    dst = new_wallet("NGN")
    with pytest.raises(psycopg2.errors.CheckViolation, match="unbalanced"):
        raw_transaction(owner, [(src.id, "NGN", "-10"), (dst.id, "NGN", "9.99")])
    assert balance_row(owner, src.id)["posted"] == Decimal("100")
    assert balance_row(owner, dst.id)["posted"] == Decimal("0")


def test_transaction_balanced_in_one_currency_but_not_another_is_rejected(database_url, owner):
    ngn_a, ngn_b = new_wallet("NGN", 50), new_wallet("NGN")
    usd_a, usd_b = new_wallet("USD", 50), new_wallet("USD")
    with pytest.raises(psycopg2.errors.CheckViolation, match="USD entries sum to"):
        raw_transaction(
            owner, [(ngn_a.id, "NGN", "-5"), (ngn_b.id, "NGN", "5"), (usd_a.id, "USD", "-5"), (usd_b.id, "USD", "4")]
        )


def test_transaction_with_one_entry_or_none_is_rejected(database_url, owner):
    src = new_wallet("NGN", 100)
    with pytest.raises(psycopg2.errors.CheckViolation, match="at least two"):
        raw_transaction(owner, [])
    with pytest.raises(psycopg2.errors.CheckViolation, match="at least two"):
        raw_transaction(owner, [(src.id, "NGN", "0.01")])


def test_entries_cannot_be_added_to_an_already_committed_transaction(database_url, owner):
    src, dst, t = posted_transfer(database_url)
    with pytest.raises(psycopg2.errors.CheckViolation, match="only written together with their transaction"):
        run(
            owner,
            (
                "INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type) VALUES (%s, %s, 'NGN', 5, 'late')",
                (t.id, dst.id),
            ),
            (
                "INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type) VALUES (%s, %s, 'NGN', -5, 'late')",
                (t.id, src.id),
            ),
        )


def test_balanced_multi_leg_transaction_by_raw_sql_keeps_cached_balances_exact(database_url, owner):
    # Invariant 5 holds for any writer: the entry trigger maintains the cached balance.
    a, b, c = new_wallet("NGN", 100), new_wallet("NGN"), new_wallet("NGN")
    raw_transaction(owner, [(a.id, "NGN", "-30"), (b.id, "NGN", "20"), (c.id, "NGN", "10")])
    assert [balance_row(owner, x.id)["posted"] for x in (a, b, c)] == [Decimal("70"), Decimal("20"), Decimal("10")]


# Invariant 3: entry currency = account currency -----------------------------------------


def test_entry_in_another_currency_than_its_account_is_rejected(database_url, owner):
    ngn = new_wallet("NGN", 100)
    usd_src, usd_dst = new_wallet("USD", 100), new_wallet("USD")
    with pytest.raises(psycopg2.errors.CheckViolation, match="does not match account"):
        # Balanced per currency, but one USD leg lands on an NGN wallet.
        raw_transaction(owner, [(usd_src.id, "USD", "-10"), (ngn.id, "USD", "10")])
    assert balance_row(owner, ngn.id)["posted"] == Decimal("100")
    assert usd_dst  # untouched


def test_entry_for_an_unknown_account_is_rejected(database_url, owner):
    src = new_wallet("NGN", 100)
    with pytest.raises(psycopg2.errors.ForeignKeyViolation, match="no such account"):
        raw_transaction(owner, [(src.id, "NGN", "-1"), (uuid.uuid4(), "NGN", "1")])


def test_entry_with_more_decimals_than_its_currency_is_rejected(database_url, owner):
    src, dst = new_wallet("JPY", 100), new_wallet("JPY")
    with pytest.raises(psycopg2.errors.CheckViolation, match="more decimal places than JPY"):
        raw_transaction(owner, [(src.id, "JPY", "-1.5"), (dst.id, "JPY", "1.5")])


def test_account_currency_and_flags_never_change(database_url, owner):
    wallet = new_wallet("NGN")
    for column, value in [("currency", "USD"), ("may_go_negative", True), ("hot", True), ("kind", "escrow")]:
        with pytest.raises(psycopg2.errors.CheckViolation, match="never change"):
            run(owner, (f"UPDATE accounts SET {column} = %s WHERE id = %s", (value, wallet.id)))


# Invariant 6: no overdraft -------------------------------------------------------------------


def test_wallet_driven_negative_by_raw_sql_is_rejected(database_url, owner):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    with pytest.raises(psycopg2.errors.CheckViolation, match="balances_available_non_negative"):
        raw_transaction(owner, [(src.id, "NGN", "-100.01"), (dst.id, "NGN", "100.01")])
    assert balance_row(owner, src.id)["posted"] == Decimal("100")


def test_held_funds_count_against_the_non_negative_check(database_url, owner):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    run(
        owner,
        (
            "INSERT INTO holds (account_id, currency, amount, expires_at) VALUES (%s, 'NGN', 60, now() + interval '1 hour')",
            (src.id,),
        ),
    )
    assert balance_row(owner, src.id)["held"] == Decimal("60")
    with pytest.raises(psycopg2.errors.CheckViolation, match="balances_available_non_negative"):
        raw_transaction(owner, [(src.id, "NGN", "-40.01"), (dst.id, "NGN", "40.01")])
    raw_transaction(owner, [(src.id, "NGN", "-40"), (dst.id, "NGN", "40")])
    assert balance_row(owner, src.id)["posted"] == Decimal("60")


def test_hold_beyond_available_is_rejected_by_the_database(database_url, owner):
    src = new_wallet("NGN", 100)
    with pytest.raises(psycopg2.errors.CheckViolation, match="balances_available_non_negative"):
        run(
            owner,
            (
                "INSERT INTO holds (account_id, currency, amount, expires_at) VALUES (%s, 'NGN', 100.01, now() + interval '1 hour')",
                (src.id,),
            ),
        )


# Invariant 7: holds resolve once ---------------------------------------------------------------


def test_a_hold_resolves_once_and_releases_its_amount(database_url, owner):
    src = new_wallet("NGN", 100)
    hold_id = uuid.uuid4()
    run(
        owner,
        (
            "INSERT INTO holds (id, account_id, currency, amount, expires_at) VALUES (%s, %s, 'NGN', 25, now() + interval '1 hour')",
            (hold_id, src.id),
        ),
    )
    run(owner, ("UPDATE holds SET status = 'voided', resolved_at = now() WHERE id = %s", (hold_id,)))
    assert balance_row(owner, src.id)["held"] == Decimal("0")
    with pytest.raises(psycopg2.Error, match="already voided"):
        run(owner, ("UPDATE holds SET status = 'expired' WHERE id = %s", (hold_id,)))
    with pytest.raises(psycopg2.Error, match="already voided"):
        run(owner, ("UPDATE holds SET status = 'posted', captured_amount = 25 WHERE id = %s", (hold_id,)))
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="append-only"):
        run(owner, ("DELETE FROM holds WHERE id = %s", (hold_id,)))
    assert balance_row(owner, src.id)["held"] == Decimal("0")


def test_a_hold_cannot_be_posted_without_a_capture_transaction(database_url, owner):
    src = new_wallet("NGN", 100)
    hold_id = uuid.uuid4()
    run(
        owner,
        (
            "INSERT INTO holds (id, account_id, currency, amount, expires_at) VALUES (%s, %s, 'NGN', 25, now() + interval '1 hour')",
            (hold_id, src.id),
        ),
    )
    with pytest.raises(psycopg2.errors.CheckViolation, match="holds_posted_is_captured"):
        run(
            owner,
            ("UPDATE holds SET status = 'posted', captured_amount = 25, resolved_at = now() WHERE id = %s", (hold_id,)),
        )
    assert balance_row(owner, src.id)["held"] == Decimal("25")


def test_a_hold_marked_posted_without_matching_entries_is_rejected_at_commit(database_url, owner):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    hold_id = uuid.uuid4()
    run(
        owner,
        (
            "INSERT INTO holds (id, account_id, currency, amount, expires_at) VALUES (%s, %s, 'NGN', 25, now() + interval '1 hour')",
            (hold_id, src.id),
        ),
    )
    other = raw_transaction(owner, [(src.id, "NGN", "-1"), (dst.id, "NGN", "1")])
    with pytest.raises(psycopg2.errors.CheckViolation, match="does not debit"):
        run(
            owner,
            (
                "UPDATE holds SET status = 'posted', captured_amount = 25, transaction_id = %s, resolved_at = now() WHERE id = %s",
                (other, hold_id),
            ),
        )


def test_app_role_cannot_write_holds_directly(database_url, app):
    src = new_wallet("NGN", 100)
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        run(
            app,
            (
                "INSERT INTO holds (account_id, currency, amount, expires_at) VALUES (%s, 'NGN', 1, now() + interval '1 hour')",
                (src.id,),
            ),
        )


# Reversals --------------------------------------------------------------------------------------


def test_a_transaction_can_be_reversed_only_once_by_the_database(database_url, owner):
    src, dst, t = posted_transfer(database_url)

    def reversal():
        rid = uuid.uuid4()
        run(
            owner,
            (
                "INSERT INTO transactions (id, kind, actor_type, reverses) VALUES (%s, 'reversal', 'system', %s)",
                (rid, t.id),
            ),
            (
                "INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type) VALUES (%s, %s, 'NGN', 10, 'reversal')",
                (rid, src.id),
            ),
            (
                "INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type) VALUES (%s, %s, 'NGN', -10, 'reversal')",
                (rid, dst.id),
            ),
        )

    reversal()
    with pytest.raises(psycopg2.errors.UniqueViolation, match="transactions_reverses_key"):
        reversal()


def test_a_reversal_that_does_not_mirror_its_original_is_rejected(database_url, owner):
    _src, dst, t = posted_transfer(database_url, amount="10")
    third = new_wallet("NGN")
    rid = uuid.uuid4()
    with pytest.raises(psycopg2.errors.CheckViolation, match="does not mirror"):
        run(
            owner,
            (
                "INSERT INTO transactions (id, kind, actor_type, reverses) VALUES (%s, 'reversal', 'system', %s)",
                (rid, t.id),
            ),
            (
                "INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type) VALUES (%s, %s, 'NGN', 10, 'reversal')",
                (rid, third.id),
            ),
            (
                "INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type) VALUES (%s, %s, 'NGN', -10, 'reversal')",
                (rid, dst.id),
            ),
        )


# Reference data ------------------------------------------------------------------------------------


def test_currencies_table_is_the_same_list_as_the_money_module(database_url, owner):
    with owner.cursor() as cur:
        cur.execute("SELECT code, minor_units FROM currencies")
        rows = dict(cur.fetchall())
    owner.commit()
    assert rows == money.CURRENCIES


def test_every_currency_has_its_hot_system_accounts(database_url):
    def read(cur):
        return [
            system_account(cur, kind, code)
            for code in money.CURRENCIES
            for kind in ("external_funding", "fees_revenue", "payout_clearing", "adjustments")
        ]

    accounts = transaction(read)
    assert len(accounts) == 4 * len(money.CURRENCIES)
    assert all(a.hot and a.may_go_negative and a.owner_id is None and a.status == "active" for a in accounts)


def test_cached_balance_read_includes_unfolded_hot_deltas(database_url):
    wallet = new_wallet("KES", 75)
    adjustments = transaction(lambda cur: system_account(cur, "adjustments", "KES"))
    # The adjustment credited the wallet and debited the hot adjustments account by a delta.
    assert transaction(lambda cur: get_account(cur, wallet.id)).balance.posted == Decimal("75")
    assert adjustments.balance.posted <= Decimal("-75")


# Invariant 5 for a writer that computes balance_after itself -----------------------------------


def test_an_entry_whose_balance_after_does_not_follow_its_balance_is_rejected(database_url, owner):
    # The posting function computes balance_after and account_version from the balance it
    # locked; a writer that supplies wrong ones is refused by the statement-level check.
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    src_row, dst_row = balance_row(owner, src.id), balance_row(owner, dst.id)
    tid = uuid.uuid4()
    insert = (
        "INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type, balance_after, account_version)"
        " VALUES (%s, %s, 'NGN', %s, 'test', %s, %s), (%s, %s, 'NGN', %s, 'test', %s, %s)"
    )
    header = ("INSERT INTO transactions (id, kind, actor_type) VALUES (%s, 'transfer', 'system')", (tid,))
    with pytest.raises(psycopg2.errors.CheckViolation, match="do not follow its balance"):
        run(owner, header, (insert, (tid, src.id, -10, Decimal(95), src_row["version"] + 1,
                                     tid, dst.id, 10, Decimal(10), dst_row["version"] + 1)))  # fmt: skip
    tid = uuid.uuid4()
    with pytest.raises(psycopg2.errors.CheckViolation, match="do not follow its balance"):
        run(owner, (header[0], (tid,)), (insert, (tid, src.id, -10, Decimal(90), src_row["version"] + 7,
                                                  tid, dst.id, 10, Decimal(10), dst_row["version"] + 1)))  # fmt: skip
    tid = uuid.uuid4()
    run(owner, (header[0], (tid,)), (insert, (tid, src.id, -10, Decimal(90), src_row["version"] + 1,
                                              tid, dst.id, 10, Decimal(10), dst_row["version"] + 1)))  # fmt: skip
    assert (balance_row(owner, src.id)["posted"], balance_row(owner, dst.id)["posted"]) == (Decimal(90), Decimal(10))
