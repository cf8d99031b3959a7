"""Run a query where the trail is: Athena in AWS, DuckDB over a local copy elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledgerline.audit_sql import cache, duck
from ledgerline.audit_sql.named import NamedQuery
from ledgerline.config import settings


@dataclass(frozen=True)
class Result:
    engine: str  # "athena" | "duckdb"
    columns: tuple[str, ...]
    rows: list[tuple[str | None, ...]]


def cache_dir(bucket: str) -> Path:
    return settings().data_dir / "audit-query" / bucket


def run(sql: str, parameters: list[str] | None = None) -> Result:
    parameters = parameters or []
    cfg = settings()
    if not cfg.local:
        from ledgerline.aws import athena

        answer = athena.query(sql, parameters)
        return Result("athena", answer.columns, answer.rows)
    from ledgerline.aws import resources

    bucket = resources.audit_bucket()
    folder = cache_dir(bucket)
    cache.sync(bucket, folder)
    con = duck.connect(cfg.resource_prefix, folder)
    try:
        columns, rows = duck.query(con, sql, parameters)
    finally:
        con.close()
    return Result("duckdb", columns, rows)


def run_named(query: NamedQuery, values: dict[str, str]) -> Result:
    return run(query.text_for(settings().resource_prefix), query.bind(values))
