"""SQL access for reconciliation: runs, staging, the comparison, and the findings."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import psycopg2

from ledgerline.db import Cursor
from ledgerline.jsonutil import dumps
from ledgerline.reconciliation.staging import COLUMNS, LineReader

# A run's work is one long transaction; the role's 5 s statement timeout is for requests.
RUN_STATEMENT_TIMEOUT = "15min"

RUN_COLUMNS = (
    "id::text AS id, provider, day, status, gateway_count, ledger_count, discrepancy_count, totals,"
    " duration_ms, error, requested_by::text AS requested_by, created_at, started_at, finished_at"
)


def create_run(cur: Cursor, provider: str, day: date, requested_by: str | None = None) -> dict[str, Any]:
    cur.execute(
        f"INSERT INTO reconciliation_runs (provider, day, requested_by) VALUES (%s, %s, %s) RETURNING {RUN_COLUMNS}",
        (provider, day, requested_by),
    )
    return dict(cur.fetchone())


def get_run(cur: Cursor, run_id: str) -> dict[str, Any] | None:
    cur.execute(f"SELECT {RUN_COLUMNS} FROM reconciliation_runs WHERE id::text = %s", (run_id,))
    row = cur.fetchone()
    return dict(row) if row else None


def claim(cur: Cursor, run_id: str) -> bool:
    """Mark a queued run running; False when another worker took it (or it ran)."""
    cur.execute(
        "UPDATE reconciliation_runs SET status = 'running', started_at = clock_timestamp(), error = NULL"
        " WHERE id = %s AND status = 'queued'",
        (run_id,),
    )
    return bool(cur.rowcount)


def lock_day(cur: Cursor, provider: str, day: date) -> None:
    """Serialise runs of one (provider, day) until this transaction ends: a second run
    waits, then compares after the first committed, and finds the same set."""
    cur.execute(
        f"SET LOCAL statement_timeout = '{RUN_STATEMENT_TIMEOUT}';"
        " SELECT pg_advisory_xact_lock(hashtextextended('reconcile:' || %s || ':' || %s, 0))",
        (provider, day.isoformat()),
    )


def stage(cur: Cursor, reader: LineReader) -> int:
    """COPY the report into the staging table; the number of rows copied."""
    cur.flush()  # COPY bypasses execute(): the deferred BEGIN must reach the server first
    try:
        cur.copy_expert(f"COPY reconciliation_staging ({COLUMNS}) FROM STDIN", reader)
    except psycopg2.Error as exc:
        if reader.error is not None:  # the gateway failed, not the database: say so
            raise reader.error from exc
        raise
    return reader.count


def compare(cur: Cursor, run_id: str, grace: timedelta) -> dict[str, Any]:
    cur.execute("SELECT reconcile_compare(%s, %s) AS result", (run_id, grace))
    result: dict[str, Any] = cur.fetchone()["result"]
    return result


def finish(cur: Cursor, run_id: str, result: dict[str, Any], duration_ms: int) -> None:
    cur.execute("DELETE FROM reconciliation_staging WHERE run_id = %s", (run_id,))
    cur.execute(
        "UPDATE reconciliation_runs SET status = 'succeeded', gateway_count = %s, ledger_count = %s,"
        " discrepancy_count = %s, totals = %s::jsonb, duration_ms = %s, finished_at = clock_timestamp()"
        " WHERE id = %s",
        (
            result["gateway_count"],
            result["ledger_count"],
            result["discrepancy_count"],
            dumps(result["totals"]),
            duration_ms,
            run_id,
        ),
    )


def fail(cur: Cursor, run_id: str, error: str) -> None:
    cur.execute(
        "UPDATE reconciliation_runs SET status = 'failed', error = %s, finished_at = clock_timestamp() WHERE id = %s",
        (error[:500], run_id),
    )


def list_runs(cur: Cursor, limit: int = 50) -> list[dict[str, Any]]:
    cur.execute(f"SELECT {RUN_COLUMNS} FROM reconciliation_runs ORDER BY created_at DESC, id LIMIT %s", (limit,))
    return [dict(r) for r in cur.fetchall()]


DISCREPANCY_COLUMNS = (
    "id::text AS id, run_id::text AS run_id, last_run_id::text AS last_run_id, provider, day, kind, reference,"
    " payment_id::text AS payment_id, gateway_amount, gateway_currency, gateway_status, gateway_fee, expected_fee,"
    " gateway_count, ledger_amount, ledger_currency, ledger_status, status,"
    " resolution_transaction_id::text AS resolution_transaction_id, note, created_at, updated_at"
)


def run_discrepancies(cur: Cursor, run_id: str) -> list[dict[str, Any]]:
    """What the run found (a re-run of the day finds the same rows: last_run_id moves)."""
    cur.execute(
        f"SELECT {DISCREPANCY_COLUMNS} FROM reconciliation_discrepancies WHERE last_run_id::text = %s"
        " ORDER BY kind, reference",
        (run_id,),
    )
    return [dict(r) for r in cur.fetchall()]


def day_discrepancies(cur: Cursor, provider: str, day: date) -> list[dict[str, Any]]:
    cur.execute(
        f"SELECT {DISCREPANCY_COLUMNS} FROM reconciliation_discrepancies WHERE provider = %s AND day = %s"
        " ORDER BY kind, reference",
        (provider, day),
    )
    return [dict(r) for r in cur.fetchall()]


def lock_discrepancy(cur: Cursor, discrepancy_id: str) -> dict[str, Any] | None:
    cur.execute(
        f"SELECT {DISCREPANCY_COLUMNS} FROM reconciliation_discrepancies WHERE id = %s FOR UPDATE", (discrepancy_id,)
    )
    row = cur.fetchone()
    return dict(row) if row else None


def update_discrepancy(
    cur: Cursor, discrepancy_id: str, status: str, transaction_id: str | None, note: str | None
) -> dict[str, Any]:
    cur.execute(
        "UPDATE reconciliation_discrepancies SET status = %s, resolution_transaction_id = %s,"
        " note = coalesce(%s, note), updated_at = clock_timestamp()"
        f" WHERE id = %s RETURNING {DISCREPANCY_COLUMNS}",
        (status, transaction_id, note, discrepancy_id),
    )
    return dict(cur.fetchone())


def queued_runs(cur: Cursor, limit: int = 20) -> list[dict[str, Any]]:
    """Runs an admin asked for that no job has executed yet, oldest first."""
    cur.execute(
        f"SELECT {RUN_COLUMNS} FROM reconciliation_runs WHERE status = 'queued' ORDER BY created_at, id LIMIT %s",
        (limit,),
    )
    return [dict(r) for r in cur.fetchall()]
