"""Scenario 8b: the incremental invariant check does not grow with the ledger.

Time of the incremental check (``ledgerline.ledger.invariants.check_incremental``) after
1,000 new transfers, on a ledger of 10,000 entries and on one of 1,000,000 (goal: ratio
under 1.5). The old history is bulk-loaded with SQL as the owner, respecting every
invariant (balanced transactions, each entry's balance_after and version following the
one before, cached balances equal to the last balance_after); the 1,000 transfers go
through the real posting path. The checkpoint is then set past the bulk load, as a
long-lived ledger's is.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench import database
from bench.harness import Figure, interleaved, percentile

ACCOUNTS = 200
NEW_TRANSFERS = 1_000

# A ring of transfers of 1.00, account i to account i+1 (one of the wallets), each
# transaction two entries; each account's entries get running balances and versions
# from its cached balance, then the balances move by what was added. Triggers are off
# for this one bulk statement (the owner's session only): every row is computed so that
# the invariants they enforce hold.
_BULK = """
SET session_replication_role = replica;
CREATE TEMP TABLE bulk_legs ON COMMIT DROP AS
  SELECT t.tid, t.i, leg.account_id, leg.amount, leg.counterpart, leg.n
    FROM (SELECT gen_random_uuid() AS tid, i,
                 (%(accounts)s::uuid[])[(i %% %(k)s) + 1] AS src,
                 (%(accounts)s::uuid[])[((i + 1) %% %(k)s) + 1] AS dst
            FROM generate_series(1, %(n)s) i) t,
         LATERAL (VALUES (t.src, -1.00::numeric, t.dst, 1), (t.dst, 1.00::numeric, t.src, 2))
           leg(account_id, amount, counterpart, n);
INSERT INTO transactions (id, kind, actor_type, description)
  SELECT DISTINCT tid, 'transfer', 'system', 'bench bulk load' FROM bulk_legs;
INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type, counterpart_id,
                     balance_after, account_version, created_at)
  SELECT l.tid, l.account_id, 'NGN', l.amount, 'transfer', l.counterpart,
         b.posted + sum(l.amount) OVER w, b.version + row_number() OVER w,
         now() + l.i * interval '1 microsecond'
    FROM bulk_legs l JOIN balances b ON b.account_id = l.account_id
  WINDOW w AS (PARTITION BY l.account_id ORDER BY l.i, l.n);
UPDATE balances b SET posted = b.posted + s.net, version = b.version + s.cnt
  FROM (SELECT account_id, sum(amount) AS net, count(*) AS cnt FROM bulk_legs GROUP BY account_id) s
 WHERE b.account_id = s.account_id;
"""


def bulk_load(owner_url: str, accounts: list[Any], transfers: int, batch: int = 100_000) -> None:
    """Add ``transfers`` balanced transfers (2 entries each) among ``accounts`` (NGN
    wallets funded with at least 1.00 each: a ring never takes an account below -1.00
    from where it started), in batches, as the owner."""
    from ledgerline.db.connection import connect

    conn = connect(owner_url, autocommit=False)
    try:
        done = 0
        while done < transfers:
            n = min(batch, transfers - done)
            with conn.cursor() as cur:
                cur.execute(_BULK, {"accounts": [str(a) for a in accounts], "k": len(accounts), "n": n})
            conn.commit()
            done += n
    finally:
        conn.close()


def advance_checkpoint(owner_url: str) -> str:
    """Everything committed so far counts as checked (the full check's slices cover it).
    Set past the last transaction written, not to the snapshot's xmin: any long transaction
    elsewhere on the server would hold that back, and the bulk load would count as new."""
    from ledgerline.db.connection import connect

    conn = connect(owner_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE ledger_check_state SET checked_below ="
                " ((SELECT max(created_xid::text::bigint) FROM transactions) + 1)::text::xid8"
                " WHERE id = 1 RETURNING checked_below::text"
            )
            return str(cur.fetchone()[0])
    finally:
        conn.close()


def _wallets(n: int) -> list[Any]:
    from ledgerline.ledger.testing import new_wallet

    return [new_wallet("NGN", 100).id for _ in range(n)]


def _transfers(accounts: list[Any], n: int) -> None:
    from decimal import Decimal

    from ledgerline.audit import Actor
    from ledgerline.db import transaction
    from ledgerline.ledger import transfer

    rng = random.Random(8)  # noqa: S311 (picks accounts, not secrets)
    for _ in range(n):
        a, b = rng.sample(accounts, 2)
        transaction(
            lambda cur, a=a, b=b: transfer(
                cur, from_account_id=a, to_account_id=b, amount=Decimal("0.01"), currency="NGN",
                actor=Actor.system("bench"),
            )
        )  # fmt: skip


def _use(url: str) -> None:
    """Point the library at ``url`` (each side of the comparison has its own database)."""
    import os

    from ledgerline import config
    from ledgerline.db import connection, transaction

    os.environ["DATABASE_URL"] = url
    config.settings.cache_clear()
    connection.reset_urls()
    transaction(lambda cur: cur.execute("SELECT 1"))  # connect outside the measurement


def _timed_check(owner_url: str, since: str) -> tuple[float, int]:
    """One incremental check from ``since`` (the checkpoint set back there as the owner)."""
    from ledgerline.db import transaction
    from ledgerline.ledger.invariants import check_incremental

    _use(owner_url)
    database.run_sql(owner_url, f"UPDATE ledger_check_state SET checked_below = '{since}'::xid8 WHERE id = 1")
    started = time.perf_counter()
    run = transaction(check_incremental)
    return time.perf_counter() - started, len(run.findings)


def _ledger_of(entries: int) -> tuple[str, str]:
    """A fresh database with ``entries`` old entries, then 1,000 new transfers: its URL and
    the checkpoint from which the check sees exactly those transfers."""
    url = database.fresh_database()
    accounts = _wallets(ACCOUNTS)
    bulk_load(url, accounts, max(entries // 2 - ACCOUNTS, 0))
    database.run_sql(url, "VACUUM ANALYZE transactions, entries, balances, accounts")
    database.run_sql(url, "CHECKPOINT")
    since = advance_checkpoint(url)
    _transfers(accounts, NEW_TRANSFERS)
    return url, since


def run(quick: bool) -> list[Figure]:
    from ledgerline.db import testing

    small_n, big_n = 10_000, (100_000 if quick else 1_000_000)
    small, big = _ledger_of(small_n), _ledger_of(big_n)
    try:
        # The two ledgers' checks alternate, round after round, so that whatever else this
        # shared machine does meanwhile weighs on both alike.
        results = interleaved({"small": lambda: _timed_check(*small), "big": lambda: _timed_check(*big)}, 15)
    finally:
        for url, _since in (small, big):
            testing.drop_database(url)
    if any(found for side in results.values() for _s, found in side):
        raise AssertionError("the check found something on a clean ledger")
    small_s = percentile([s for s, _ in results["small"]], 50)
    big_s = percentile([s for s, _ in results["big"]], 50)
    return [
        Figure(
            "invariants", f"incremental check after {NEW_TRANSFERS:,} transfers, {big_n:,} entries (p50)",
            big_s * 1000, "ms", baseline=small_s * 1000, baseline_name=f"{small_n:,} entries",
            goal="ratio < 1.5", runs=[round(s * 1000, 2) for s, _ in results["big"]],
            extra={"small_runs": [round(s * 1000, 2) for s, _ in results["small"]]},
        )
    ]  # fmt: skip
