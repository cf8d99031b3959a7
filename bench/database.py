"""The benchmark database: a fresh, migrated copy on the embedded server (or DATABASE_URL)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ledgerline import config
from ledgerline.db import connection, testing
from ledgerline.local import embedded


def server_url() -> str:
    return os.environ.get("DATABASE_URL") or embedded.ensure_running(config.settings().data_dir)


def fresh_database() -> str:
    """A throwaway migrated database; the library is pointed at it. Returns its owner URL."""
    url = testing.create_test_database(server_url())
    os.environ["DATABASE_URL"] = url
    config.settings.cache_clear()
    connection.reset_urls()
    return url


def pg_bin(name: str) -> str:
    return str(embedded.bin_dir() / name)


def libpq_args(url: str) -> list[str]:
    """-h/-p/-U/dbname for the PostgreSQL command-line tools."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    args = ["-h", host, "-U", parts.username or "postgres"]
    if parts.port:
        args += ["-p", str(parts.port)]
    return [*args, parts.path.lstrip("/")]


def run_sql(url: str, sql: str) -> None:
    conn = connection.connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def pgbench(url: str, *args: str, env: dict[str, str] | None = None) -> str:
    cmd = [pg_bin("pgbench"), *args, *libpq_args(url)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed: {out.stderr[-2000:]}")
    return out.stdout


def data_path() -> Path:
    return config.settings().data_dir
