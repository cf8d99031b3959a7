"""The peer baseline: pgledger, a double-entry ledger in pure PL/pgSQL (MIT, by Paul
Gross; github.com/pgr0ss/pgledger), run on the same server in the same run.

pgledger is a benchmark baseline only and is never copied into this repository: its SQL
is read at bench time from ``../shared/baselines/pgledger/`` (or ``LEDGERLINE_PGLEDGER_DIR``)
and loaded into a database of its own beside the Ledgerline and pgbench databases. When
the folder is absent, the pgledger figures are skipped with the reason printed and
recorded in results.json.

A pgledger transfer is one statement in autocommit (``pgledger_create_transfer``): it
locks both accounts in id order, updates both balances, checks the balance constraints
and the currencies, and inserts the transfer and its two entries. It does not claim an
idempotency key, write an audit row or store a response, which a Ledgerline transfer does.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import database, load

# Load order from the folder's README, each file as one script.
FILES = ("ulid-ulid-to-uuid.sql", "ulid-uuid-to-ulid.sql", "pgledger.sql")
FUNDING = Decimal("1000000")
AMOUNT = Decimal("1.00")
TRANSFER = "SELECT id FROM pgledger_create_transfer(%s, %s, %s)"


def folder() -> Path:
    configured = os.environ.get("LEDGERLINE_PGLEDGER_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1].parent / "shared" / "baselines" / "pgledger"


def unavailable() -> str | None:
    """Why pgledger cannot run here, or None when it can."""
    path = folder()
    if not path.is_dir():
        return f"{path} is absent (set LEDGERLINE_PGLEDGER_DIR to a pgledger snapshot to measure it)"
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        return f"{path} lacks {', '.join(missing)}"
    return None


@dataclass
class Ledger:
    url: str
    accounts: list[str]


def prepare(url: str, wallets: int) -> Ledger:
    """A fresh database beside ``url`` holding pgledger, ``wallets`` accounts in NGN that
    may not go negative (as Ledgerline's user wallets), each funded from one account that
    may, as the Ledgerline transfer scenario funds its wallets."""
    name = database.connection.database_name(url) + "_pgledger"
    bench_url = database.connection.with_database(url, name)
    admin = database.connection.with_database(url, "postgres")
    database.run_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    database.run_sql(admin, f'CREATE DATABASE "{name}"')
    conn = database.connection.connect(bench_url, autocommit=True, application_name="bench-pgledger")
    try:
        with conn.cursor() as cur:
            for file in FILES:
                cur.execute((folder() / file).read_text())
            cur.execute("SELECT id FROM pgledger_create_account('funding', 'NGN', true, true)")
            funding = cur.fetchone()[0]
            cur.execute(
                """
                SELECT a.id FROM generate_series(1, %s) AS g,
                       LATERAL pgledger_create_account('wallet-' || g, 'NGN', false, true) AS a
                 ORDER BY g
                """,
                (wallets,),
            )
            accounts = [row[0] for row in cur.fetchall()]
            for i in range(0, len(accounts), 100):
                cur.execute(
                    """
                    SELECT count(*) FROM pgledger_create_transfers(transfer_requests => ARRAY(
                        SELECT (%s, id, %s)::transfer_request FROM unnest(%s::text[]) AS id))
                    """,
                    (funding, FUNDING, accounts[i : i + 100]),
                )
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()
    return Ledger(bench_url, accounts)


def drop(ledger: Ledger) -> None:
    name = database.connection.database_name(ledger.url)
    database.run_sql(
        database.connection.with_database(ledger.url, "postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )


def transfer(cur: Any, rng: random.Random, accounts: list[str]) -> None:
    """One transfer between two distinct random accounts: one statement, autocommit."""
    src, dst = rng.sample(accounts, 2)
    cur.execute(TRANSFER, (src, dst, AMOUNT))
    cur.fetchone()


def _client(url: str, accounts: list[str], seconds: float, start: Any, out: Any) -> None:
    import psycopg2

    conn = psycopg2.connect(url, application_name="bench-pgledger")
    conn.autocommit = True
    cur = conn.cursor()
    rng = random.Random()  # noqa: S311 - load generation
    latencies: list[float] = []
    failures = 0
    transfer(cur, rng, accounts)  # warm, as every client of the run
    start_at, cpu = start.wait()
    deadline = start_at + seconds
    while time.time() < deadline:
        t = time.perf_counter()
        try:
            transfer(cur, rng, accounts)
        except psycopg2.Error:
            failures += 1
        latencies.append(time.perf_counter() - t)
    conn.close()
    out.put({"latencies": latencies, "failures": failures, "cpu_s": load.cpu_since(cpu)})


def run(ledger: Ledger, clients: int, seconds: float) -> dict[str, Any]:
    """Transfers/s with ``clients`` processes, the shape of ``bench.transfers``."""
    return load.run_clients(_client, (ledger.url, ledger.accounts), clients, seconds)
