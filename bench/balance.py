"""Scenario 3: balance reads (now and at a past instant) on a small vs a huge history.

Reads must be constant-time: a read on an account with 1,000,000 entries should cost
what it costs with 1,000 (goal: ratio ≤ 1.2), because entries carry the balance after
them and the current balance is cached.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from bench import database
from bench.harness import Figure, percentile

_POPULATE = """
DO $$
DECLARE i integer;
BEGIN
  FOR i IN 1..%(n)s LOOP
    PERFORM ledger_post_legs('transfer', ARRAY[%(a)s::uuid, %(b)s::uuid], ARRAY['NGN', 'NGN'],
      CASE WHEN i %% 2 = 0 THEN ARRAY[-1.00, 1.00] ELSE ARRAY[1.00, -1.00] END::numeric[],
      ARRAY['transfer', 'transfer'], ARRAY[%(b)s::uuid, %(a)s::uuid], '{"type": "system"}'::jsonb);
  END LOOP;
END $$;
"""


def _pair(funded: int) -> tuple[Any, Any]:
    from ledgerline.ledger.testing import new_wallet

    a = new_wallet("NGN", funded)
    b = new_wallet("NGN", funded)
    return a.id, b.id


def _populate(a: Any, b: Any, entries_each: int, batch: int = 5_000) -> None:
    """Alternate 1.00 back and forth so both accounts get ``entries_each`` entries."""
    from ledgerline.db import transaction

    done = 0
    while done < entries_each:
        n = min(batch, entries_each - done)
        transaction(lambda cur, n=n: cur.execute(_POPULATE % {"n": n, "a": f"'{a}'", "b": f"'{b}'"}))
        done += n


def _read_latencies(sides: dict[str, tuple[Any, datetime | None]], reads: int) -> dict[str, list[float]]:
    """Latency of each side's read, the sides alternating read by read, so that whatever
    else the machine does meanwhile (a checkpoint, autovacuum) slows them alike."""
    from ledgerline.db import transaction
    from ledgerline.ledger import accounts, balances

    def reader(account_id: Any, at: datetime | None) -> Any:
        def read(cur: Any) -> Any:
            account = accounts.get_account(cur, account_id)
            return account.balance.posted if at is None else balances.balance_at(cur, account, at)

        return read

    readers = {name: reader(*side) for name, side in sides.items()}
    out: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(reads + 50):  # the first 50 rounds warm up
        for name, read in readers.items():
            t = time.perf_counter()
            transaction(read)
            if i >= 50:
                out[name].append(time.perf_counter() - t)
    return out


def run(quick: bool) -> list[Figure]:
    url = database.fresh_database()
    small_n, big_n = 1_000, (20_000 if quick else 1_000_000)
    reads = 300 if quick else 3000
    small = _pair(10)
    big = _pair(10)
    _populate(*small, small_n)
    started = time.perf_counter()
    _populate(*big, big_n // 2)
    midpoint = _now()
    _populate(*big, big_n - big_n // 2)
    populate_s = time.perf_counter() - started
    # Let the bulk load settle (statistics, visibility map, dirty buffers), as a
    # long-lived ledger's tables are, before timing reads on it.
    database.run_sql(url, "VACUUM ANALYZE entries, balances, accounts")
    database.run_sql(url, "CHECKPOINT")
    figures = []
    small_past = _now()
    for label, at_small, at_big in (("now", None, None), ("at a past instant", small_past, midpoint)):
        latencies = _read_latencies({"small": (small[0], at_small), "big": (big[0], at_big)}, reads)
        s = percentile(latencies["small"], 50) * 1000
        b = percentile(latencies["big"], 50) * 1000
        figures.append(
            Figure(
                "balance read", f"balance {label}, {big_n:,} entries (p50)", b, "ms",
                baseline=s, baseline_name=f"{small_n:,} entries", goal="ratio ≤ 1.2",
                extra={"populate_seconds": round(populate_s, 1), "reads": reads},
            )
        )  # fmt: skip
    return figures


def _now() -> datetime:
    from ledgerline.db import transaction

    def now(cur: Any) -> datetime:
        cur.execute("SELECT clock_timestamp() AS t")
        return cur.fetchone()["t"]

    return transaction(now)
