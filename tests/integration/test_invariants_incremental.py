"""The incremental ledger check, the full check in slices, and findings audited once (issue 16)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from ledgerline import ledger
from ledgerline.db import transaction
from ledgerline.ledger.invariants import check_full_slice, check_incremental, finding_key, run_ledger_check
from ledgerline.ledger.testing import new_wallet, user_actor


def pay(src, dst, amount):
    return transaction(
        lambda cur: ledger.transfer(
            cur,
            from_account_id=src.id,
            to_account_id=dst.id,
            amount=Decimal(amount),
            currency=src.currency,
            actor=user_actor(src.owner_id),
        )
    )


def incremental():
    return transaction(check_incremental)


def entries_of(owner_conn, transaction_id):
    with owner_conn.cursor() as cur:
        cur.execute("SELECT id, account_id FROM entries WHERE transaction_id = %s ORDER BY amount", (transaction_id,))
        return [{"id": r[0], "account_id": r[1]} for r in cur.fetchall()]


class Tampering:
    """Changes an entry as the owner with the append-only guard off for this session only,
    and puts it back (and forgets the findings) afterwards, so that other tests see clean books."""

    def __init__(self, owner_conn):
        self.conn = owner_conn
        self.undo: list[tuple[str, tuple]] = []

    def add_to_entry(self, entry_id, column, delta):
        with self.conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            cur.execute(f"UPDATE entries SET {column} = {column} + %s WHERE id = %s", (delta, entry_id))
            cur.execute("SET session_replication_role = origin")
        self.undo.append((f"UPDATE entries SET {column} = {column} - %s WHERE id = %s", (delta, entry_id)))

    def restore(self):
        with self.conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            for sql, params in reversed(self.undo):
                cur.execute(sql, params)
            cur.execute("SET session_replication_role = origin")
            cur.execute("DELETE FROM ledger_check_findings")


@pytest.fixture
def tamper(owner_conn):
    t = Tampering(owner_conn)
    yield t
    t.restore()


def audited_findings(owner_conn, entry_id):
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'ledger.imbalance_detected'"
            " AND metadata -> 'data' ->> 'entry_id' = %s",
            (str(entry_id),),
        )
        return cur.fetchone()[0]


def test_a_clean_ledger_finds_nothing_and_the_checkpoint_moves(database_url):
    incremental()  # whatever earlier tests left is checked; from here on, only new rows
    a, b = new_wallet("NGN", 100), new_wallet("NGN")
    for _ in range(5):
        pay(a, b, "3.00")
    first = incremental()
    assert first.findings == []
    pay(b, a, "1.00")
    second = incremental()
    assert second.findings == []
    assert int(second.checked_below) >= int(first.checked_below)


def test_a_corrupted_new_entry_is_found_incrementally_and_audited_once(database_url, owner_conn, tamper):
    incremental()
    a, b = new_wallet("NGN", 100), new_wallet("NGN")
    t = pay(a, b, "10.00")
    _debit, credit = entries_of(owner_conn, t.id)
    tamper.add_to_entry(credit["id"], "amount", Decimal("1.00"))

    run = incremental()
    found = {(f.invariant, f.data.get("transaction_id") or f.data.get("entry_id") or f.data.get("account_id"))
             for f in run.findings}  # fmt: skip
    assert ("transaction_balanced", str(t.id)) in found
    assert ("entry_follows_previous", str(credit["id"])) in found
    assert {f.invariant for f in run.new} >= {"transaction_balanced", "entry_follows_previous"}
    assert audited_findings(owner_conn, credit["id"]) == 1

    # Found again (the full check reaches the same entry): remembered, not audited again.
    transaction(lambda cur: _remember_again(cur, run.findings))
    assert audited_findings(owner_conn, credit["id"]) == 1


def _remember_again(cur, findings):
    from ledgerline.ledger.invariants import _remember

    assert _remember(cur, findings, "full", None) == []


def test_the_incremental_check_reads_by_index_on_a_big_ledger(database_url, owner_conn):
    """Without a full scan: on a ledger of 100,000+ entries, every query of the incremental
    check is planned with index scans on entries and transactions, never a sequential scan."""
    from bench.invariants import bulk_load
    from ledgerline.ledger import invariants

    wallets = [new_wallet("NGN", 10).id for _ in range(20)]
    bulk_load(database_url, wallets, 60_000)
    with owner_conn.cursor() as cur:
        cur.execute("ANALYZE transactions")
        cur.execute("ANALYZE entries")
    a, b = new_wallet("NGN", 100), new_wallet("NGN")
    t = pay(a, b, "1.00")

    def plans(cur):
        # The checkpoint as it stands right before the new transfer (the real one may lag
        # behind while any long transaction runs on the server: it is commit-safe).
        cur.execute("SELECT created_xid::text AS since FROM transactions WHERE id = %s", (t.id,))
        since = cur.fetchone()["since"]
        out = {}
        for name, _key, query, _message in invariants._TRANSACTION_CHECKS + invariants._ACCOUNT_CHECKS:
            cur.execute(f"EXPLAIN (FORMAT JSON) {invariants._NEW} SELECT * FROM ({query}) f", {"since": since})
            out[name] = cur.fetchone()["QUERY PLAN"]
        return out

    for name, plan in transaction(plans).items():
        scans = list(_scans(plan[0]["Plan"]))
        assert ("Seq Scan", "entries") not in scans, (name, scans)
        assert ("Seq Scan", "transactions") not in scans, (name, scans)
        assert any(t in ("entries", "transactions") for _, t in scans), (name, scans)
    assert [f for f in incremental().findings if f.data.get("account_id") in (str(a.id), str(b.id))] == []


def _scans(node):
    if "Relation Name" in node:
        yield node["Node Type"], node["Relation Name"]
    for child in node.get("Plans", []):
        yield from _scans(child)


def test_the_sliced_full_check_finds_a_corruption_in_an_old_untouched_account(database_url, owner_conn, tamper):
    a, b = new_wallet("NGN", 50), new_wallet("NGN")
    t = pay(a, b, "5.00")
    # a and b are now behind the checkpoint (set as the owner: the real one waits for any
    # long transaction on the server to end), and nothing touches them again.
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE ledger_check_state SET checked_below = greatest(checked_below,"
            " ((SELECT created_xid FROM transactions WHERE id = %s)::text::bigint + 1)::text::xid8)",
            (t.id,),
        )
    _debit, credit = entries_of(owner_conn, t.id)
    tamper.add_to_entry(credit["id"], "balance_after", Decimal("2.00"))
    other_a, other_b = new_wallet("NGN", 10), new_wallet("NGN")
    pay(other_a, other_b, "1.00")
    assert incremental().findings == []  # the incremental check does not read old accounts

    keys, passes, slices = set(), None, 0
    while True:
        run = transaction(lambda cur: check_full_slice(cur, accounts=50, transactions=200))
        slices += 1
        keys |= {finding_key(f) for f in run.findings}
        if passes is None:
            passes = run.full_passes_completed
        if run.full_account_after is None and run.full_transaction_after is None:
            break
        assert slices < 100_000
    assert slices > 1  # it really went in slices
    assert f"entry_follows_previous:{credit['id']}" in keys
    assert f"balance_after_matches_cached:{b.id}" in keys
    assert audited_findings(owner_conn, credit["id"]) == 1


def test_two_checks_at_once_report_a_finding_once(database_url, owner_conn, tamper):
    incremental()
    a, b = new_wallet("NGN", 100), new_wallet("NGN")
    t = pay(a, b, "4.00")
    _debit, credit = entries_of(owner_conn, t.id)
    tamper.add_to_entry(credit["id"], "amount", Decimal("0.50"))

    barrier = threading.Barrier(4)
    runs, errors = [], []

    def check():
        try:
            barrier.wait()
            runs.append(run_ledger_check(60, max_slices=1))
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=check) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert audited_findings(owner_conn, credit["id"]) == 1
    new_keys = [finding_key(f) for r in runs for f in r.new if f.data.get("entry_id") == str(credit["id"])]
    assert new_keys == [f"entry_follows_previous:{credit['id']}"]


def test_the_full_check_resumes_where_the_last_slice_stopped(database_url, owner_conn):
    for _ in range(3):
        new_wallet("NGN", 1)
    with owner_conn.cursor() as cur:  # a pass starting from the beginning
        cur.execute("UPDATE ledger_check_state SET full_account_after = NULL, full_transaction_after = NULL")
        cur.execute("SELECT id::text FROM accounts ORDER BY id LIMIT 4")
        accounts = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT id::text FROM transactions ORDER BY id LIMIT 4")
        transactions = [r[0] for r in cur.fetchall()]
    first = transaction(lambda cur: check_full_slice(cur, accounts=2, transactions=2))
    second = transaction(lambda cur: check_full_slice(cur, accounts=2, transactions=2))
    assert (first.full_account_after, first.full_transaction_after) == (accounts[1], transactions[1])
    assert (second.full_account_after, second.full_transaction_after) == (accounts[3], transactions[3])


def test_the_hourly_job_reports_a_corruption(database_url, owner_conn, tamper):
    from functions.reconcile import ledger_check
    from tests.integration.test_ledger_jobs import Context, scheduled_event

    incremental()
    a, b = new_wallet("NGN", 30), new_wallet("NGN")
    t = pay(a, b, "3.00")
    _debit, credit = entries_of(owner_conn, t.id)
    tamper.add_to_entry(credit["id"], "balance_after", Decimal("0.01"))
    result = ledger_check.handler(scheduled_event("ledger-check"), Context())
    assert result["ok"] is False
    assert {(f["invariant"], f["data"].get("entry_id") or f["data"].get("account_id")) for f in result["findings"]} >= {
        ("entry_follows_previous", str(credit["id"])),
        ("balance_after_matches_cached", str(b.id)),
    }
    assert audited_findings(owner_conn, credit["id"]) == 1
