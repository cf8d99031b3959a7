"""The embedded PostgreSQL server (the ``pgserver`` wheel) used when DATABASE_URL is unset.

It listens on a Unix socket in its data directory only, so nothing outside this machine
can reach it. The server outlives the process that started it (tests and the CLI reuse
a running one); ``stop`` ends it. The code that connects knows nothing of it: the local
stack and the CLI point ``DATABASE_URL`` at it (``use_unless_configured``).
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from ledgerline import config

DATABASE = "ledgerline"

logger = logging.getLogger(__name__)


def pgdata(data_dir: Path) -> Path:
    return data_dir / "pg"


def ensure_running(data_dir: Path) -> str:
    """Start (or find) the embedded server; return the superuser URI of its socket."""
    import pgserver  # the wheel is a local-stack dependency, absent in Lambda

    path = pgdata(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(path, cleanup_mode=None)
    return server.get_uri()


def ensure_database(server_uri: str, name: str) -> None:
    from ledgerline.db.connection import connect, with_database

    conn = connect(with_database(server_uri, "postgres"), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def use_unless_configured() -> bool:
    """Start the embedded server and point ``DATABASE_URL`` at its ledgerline database,
    unless DATABASE_URL is already set. True when it did."""
    if config.settings().database_url:
        return False
    from ledgerline.db.connection import with_database

    server = ensure_running(config.settings().data_dir)
    ensure_database(server, DATABASE)
    os.environ["DATABASE_URL"] = with_database(server, DATABASE)
    config.settings.cache_clear()
    return True


def bin_dir() -> Path:
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def postmaster_pid(data_dir: Path) -> int | None:
    pidfile = pgdata(data_dir) / "postmaster.pid"
    try:
        return int(pidfile.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None


def stop(data_dir: Path) -> None:
    """Stop the server (fast shutdown: roll back open transactions, then exit)."""
    path = pgdata(data_dir)
    if postmaster_pid(data_dir) is None:
        return
    cmd = [str(bin_dir() / "pg_ctl"), "-D", str(path), "-m", "fast", "-w", "stop"]
    owner = path.stat().st_uid
    if os.geteuid() == 0 and owner != 0:
        # pgserver runs the server as its own system user when started by root.
        import pwd

        cmd = ["su", pwd.getpwuid(owner).pw_name, "-s", "/bin/sh", "-c", " ".join(cmd)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        logger.warning("pg_ctl stop failed: %s", result.stderr.strip())
