"""The ledger under real concurrency (threads and processes, each with its own
connection, on the real PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal

import pytest

from ledgerline import errors, idempotency, jsonutil, ledger
from ledgerline.db import transaction
from ledgerline.db.connection import discard_connection
from ledgerline.ledger.testing import new_wallet, user_actor


def in_threads(n, fn):
    """Run fn(i) on n threads released together; return results (or exceptions) by i."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as exc:  # collected and asserted on by the test
            results[i] = exc
        finally:
            discard_connection()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def account(a):
    return transaction(lambda cur: ledger.get_account(cur, a.id))


def test_fifty_concurrent_transfers_of_ten_from_a_hundred_exactly_ten_succeed(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")

    def send(i):
        return transaction(
            lambda cur: ledger.transfer(
                cur,
                from_account_id=src.id,
                to_account_id=dst.id,
                amount=Decimal(10),
                currency="NGN",
                actor=user_actor(src.owner_id),
            )
        )

    results = in_threads(50, send)
    succeeded = [r for r in results if isinstance(r, ledger.Transfer)]
    refused = [r for r in results if isinstance(r, errors.InsufficientFunds)]
    assert (len(succeeded), len(refused)) == (10, 40), [r for r in results if isinstance(r, BaseException)][:3]
    assert account(src).balance.posted == Decimal(0)
    assert account(dst).balance.posted == Decimal(100)
    assert transaction(ledger.check_invariants) == []


def test_opposite_transfers_hammered_concurrently_never_deadlock(database_url):
    a, b = new_wallet("NGN", 1000), new_wallet("NGN", 1000)
    retries = []

    def hammer(i):
        for k in range(25):
            src, dst = (a, b) if (i + k) % 2 == 0 else (b, a)
            transaction(
                lambda cur, s=src, d=dst: ledger.transfer(
                    cur,
                    from_account_id=s.id,
                    to_account_id=d.id,
                    amount=Decimal("1.25"),
                    currency="NGN",
                    actor=user_actor(s.owner_id),
                ),
                # Called only when the unit is retried (deadlock or serialization failure).
                sleep=lambda seconds: retries.append(seconds),
            )
        return "done"

    results = in_threads(8, hammer)
    assert results == ["done"] * 8, [r for r in results if r != "done"][:3]
    # Locks are taken in account-id order, so there is nothing to retry, let alone surface.
    assert retries == []
    assert account(a).balance.posted + account(b).balance.posted == Decimal(2000)
    assert account(a).balance.posted == Decimal(1000)  # 100 each way
    assert transaction(ledger.check_invariants) == []


def test_same_idempotency_key_twenty_times_at_once_moves_money_once(database_url):
    from tests.integration.test_idempotency import caller, send

    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    key, marker = uuid.uuid4(), f"idem-{uuid.uuid4().hex[:8]}"
    adm = caller(src.owner_id)
    body = {"from_account_id": str(src.id), "to_account_id": str(dst.id), "amount": "7.00", "currency": "NGN",
            "description": marker}  # fmt: skip

    results = in_threads(20, lambda i: send(adm, key, body))

    assert all(isinstance(r, idempotency.Outcome) for r in results), [
        r for r in results if isinstance(r, BaseException)
    ][:3]
    assert {(r.status, r.body) for r in results} == {(201, results[0].body)}
    assert sum(not r.replayed for r in results) == 1

    def count(cur):
        cur.execute("SELECT count(*) AS n FROM transactions WHERE description = %s", (marker,))
        return cur.fetchone()["n"]

    assert transaction(count) == 1
    assert account(src).balance.posted == Decimal(93)
    assert jsonutil.loads(results[0].body)["amount"] == {"amount": "7.00", "currency": "NGN"}


CHILD = r"""
import sys, time
from decimal import Decimal
from uuid import UUID
import psycopg2.extras
from ledgerline import ledger
from ledgerline.audit import Actor
from ledgerline.db.connection import get_connection

src, dst, owner = (UUID(x) for x in sys.argv[1:4])
conn = get_connection()
cur = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
cur.execute("BEGIN")  # the connection is in autocommit mode; this transaction stays open
cur.execute("SELECT pg_backend_pid() AS pid")
print("pid", cur.fetchone()["pid"], flush=True)
t = ledger.transfer(cur, from_account_id=src, to_account_id=dst, amount=Decimal(40), currency="NGN",
                    actor=Actor(id=owner, type="user"), description=sys.argv[4])
print("written", t.id, flush=True)
time.sleep(120)
"""


def start_child(src, dst, marker):
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(src.id), str(dst.id), str(src.owner_id), marker],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def wait_backend_gone(owner_conn, pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with owner_conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            if cur.fetchone()[0] == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"backend {pid} still there after the client was killed")


def leftovers(owner_conn, marker, *accounts):
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM transactions WHERE description = %s", (marker,))
        txns = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM entries e JOIN transactions t ON t.id = e.transaction_id WHERE t.description = %s",
            (marker,),
        )
        entries = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM audit_log WHERE action LIKE 'transfer.%%' AND payload_after->>'description' = %s",
            (marker,),
        )
        audits = cur.fetchone()[0]
    return txns, entries, audits, [account(a).balance.posted for a in accounts]


@pytest.mark.slow
def test_a_process_killed_after_writing_a_transfer_leaves_no_partial_rows(database_url, owner_conn):
    src, dst, marker = new_wallet("NGN", 100), new_wallet("NGN"), f"kill-{uuid.uuid4().hex[:8]}"
    child = start_child(src, dst, marker)
    try:
        pid = int(child.stdout.readline().split()[1])
        written = child.stdout.readline()
        assert written.startswith("written"), written
        # Every row of the transfer exists now, uncommitted; the process dies before COMMIT.
        with owner_conn.cursor() as cur:
            cur.execute("SELECT state, backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = %s", (pid,))
            assert cur.fetchone() == ("idle in transaction", True)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    wait_backend_gone(owner_conn, pid)
    assert leftovers(owner_conn, marker, src, dst) == (0, 0, 0, [Decimal(100), Decimal(0)])
    assert transaction(ledger.check_invariants) == []


@pytest.mark.slow
def test_a_process_killed_while_waiting_for_a_lock_leaves_no_partial_rows(database_url, owner_conn):
    src, dst, marker = new_wallet("NGN", 100), new_wallet("NGN"), f"kill-{uuid.uuid4().hex[:8]}"
    owner_conn.autocommit = False
    with owner_conn.cursor() as cur:
        cur.execute("SELECT 1 FROM balances WHERE account_id = %s FOR UPDATE", (src.id,))
    child = start_child(src, dst, marker)
    try:
        pid = int(child.stdout.readline().split()[1])
        deadline = time.monotonic() + 10
        waiting = False
        while time.monotonic() < deadline and not waiting:
            with owner_conn.cursor() as cur:
                cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
                row = cur.fetchone()
                waiting = row is not None and row[0] == "Lock"
            time.sleep(0.02)
        assert waiting, "the child never queued on the balance lock"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        owner_conn.rollback()
        owner_conn.autocommit = True
        if child.poll() is None:
            child.kill()
    wait_backend_gone(owner_conn, pid)
    assert leftovers(owner_conn, marker, src, dst) == (0, 0, 0, [Decimal(100), Decimal(0)])
