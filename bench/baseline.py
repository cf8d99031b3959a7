"""The baseline: pgbench's TPC-B-like transaction on the same server, same client count."""

from __future__ import annotations

import re

from bench import database


def prepare(url: str, scale: int = 10) -> str:
    """A separate database holding pgbench's tables (scale 10 ≈ 1M accounts rows)."""
    bench_url = database.connection.with_database(url, database.connection.database_name(url) + "_pgbench")
    name = database.connection.database_name(bench_url)
    admin = database.connection.with_database(url, "postgres")
    database.run_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    database.run_sql(admin, f'CREATE DATABASE "{name}"')
    database.pgbench(bench_url, "-i", "-q", "-s", str(scale))
    return bench_url


def tpcb_tps(bench_url: str, clients: int, seconds: int) -> float:
    """One pgbench run: TPS without the connection time."""
    out = database.pgbench(
        bench_url, "-b", "tpcb-like", "-c", str(clients), "-j", str(clients), "-T", str(seconds), "-n"
    )
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    if not m:
        raise RuntimeError(f"unexpected pgbench output:\n{out}")
    return float(m.group(1))


def checkpoint(url: str) -> None:
    """Start every measured run from the same state: no dirty buffers, no pending
    full-page images (each side of a comparison would otherwise pay for the other's)."""
    database.run_sql(url, "CHECKPOINT")


def drop(bench_url: str) -> None:
    name = database.connection.database_name(bench_url)
    database.run_sql(
        database.connection.with_database(bench_url, "postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )
