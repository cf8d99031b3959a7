"""Scenario 8a: reconciliation of 1,000,000 gateway records against 1,000,000 ledger payments.

The fake gateway's seeded report (``ledgerline.local.fake_wire.report``: generated page
by page, 7 discrepancy kinds planted) is read through its ``list_payments`` in process
(pages of 1,000 adapter values: over HTTP the figure would be the fake server's, one
request per 50-100 rows); the ledger side is bulk-loaded with one COPY as the owner
(``ledgerline.reconciliation.testing``). The figure is the whole run: the COPY into
staging, the set-based comparison, the findings and the run row. Peak RSS is the
process's (resource.getrusage) before and after the run: streaming keeps it flat.
"""

from __future__ import annotations

import resource
import time
from datetime import date
from decimal import Decimal

from bench import database
from bench.harness import Figure

PER_KIND = 10


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run(quick: bool) -> list[Figure]:
    from ledgerline.db import transaction
    from ledgerline.db.connection import connect
    from ledgerline.ledger.testing import new_wallet
    from ledgerline.local.fake_wire.report import SeededReport
    from ledgerline.reconciliation import run as reconciliation
    from ledgerline.reconciliation import store
    from ledgerline.reconciliation.testing import insert_ledger_payments

    n = 100_000 if quick else 1_000_000
    url = database.fresh_database()
    wallet = new_wallet("NGN", Decimal("10.00"))
    report = SeededReport("paystack", date(2026, 11, 30), n, PER_KIND, seed=8)
    conn = connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT transaction_id FROM entries WHERE account_id = %s LIMIT 1", (wallet.id,))
            tx = str(cur.fetchone()[0])
            loaded_at = time.perf_counter()
            insert_ledger_payments(
                cur, report, owner_id=str(wallet.owner_id), account_id=str(wallet.id), transaction_id=tx
            )
            load_s = time.perf_counter() - loaded_at
            cur.execute("VACUUM ANALYZE payments")
    finally:
        conn.close()

    rss_before = _peak_rss_mb()
    started = time.perf_counter()
    created = transaction(lambda cur: store.create_run(cur, "paystack", report.day))
    summary = reconciliation.execute(created["id"], report.list_payments, emit_metric=False)
    elapsed = time.perf_counter() - started
    rss_after = _peak_rss_mb()

    expected = 7 * PER_KIND
    if summary.discrepancy_count != expected or summary.gateway_count != n:
        raise AssertionError(
            f"found {summary.discrepancy_count} (expected {expected}) over {summary.gateway_count} rows"
        )
    extra = {
        "gateway_records": n,
        "ledger_payments": n - PER_KIND,
        "discrepancies": summary.discrepancy_count,
        "staging_copy_s": round(summary.staged_ms / 1000, 1),
        "compare_and_store_s": round((summary.duration_ms - summary.staged_ms) / 1000, 1),
        "ledger_bulk_load_s": round(load_s, 1),
        "peak_rss_mb_before_run": round(rss_before, 1),
        "peak_rss_mb_after_run": round(rss_after, 1),
    }
    return [
        Figure("reconcile", f"{n:,} gateway records vs {n - PER_KIND:,} ledger payments", elapsed, "s",
               goal="< 60 s", extra=extra),
        Figure("reconcile", "peak RSS of the run's process", rss_after, "MB",
               goal="bounded by streaming (flat vs before the run)", extra={"before_run_mb": round(rss_before, 1)}),
    ]  # fmt: skip
