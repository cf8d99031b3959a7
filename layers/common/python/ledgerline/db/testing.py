"""Throwaway databases for test runs, cloned from a migrated template (fast).

The template's name carries the fingerprint of the migrations and the routine files
(``migrate.fingerprint``), so changing either builds a new template; cloning it costs
~100 ms instead of re-running every migration and routine.
"""

from __future__ import annotations

import contextlib
import os
import secrets

import psycopg2

from ledgerline.db import migrate
from ledgerline.db.connection import connect, database_name, with_database

_TEMPLATE_LOCK = 0x5445535444425F  # serializes template builds across concurrent runs


def _exists(cur, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    return cur.fetchone() is not None


def create_test_database(server_url: str) -> str:
    """Create a fresh, migrated database and return its owner URL."""
    admin = connect(with_database(server_url, "postgres"), autocommit=True)
    try:
        with admin.cursor() as cur:
            _drop_orphans(cur)
            template = f"ledgerline_tpl_{migrate.fingerprint()}"
            cur.execute("SELECT pg_advisory_lock(%s)", (_TEMPLATE_LOCK,))
            try:
                if not _exists(cur, template):
                    building = f"{template}_building"
                    cur.execute(f'DROP DATABASE IF EXISTS "{building}"')
                    cur.execute(f'CREATE DATABASE "{building}"')
                    migrate.migrate(with_database(server_url, building))
                    cur.execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
                name = f"ledgerline_test_{os.getpid()}_{secrets.token_hex(3)}"
                cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (_TEMPLATE_LOCK,))
    finally:
        admin.close()
    url = with_database(server_url, name)
    # Nothing to apply, but the role and database settings (not cloned, and the roles'
    # are cluster-wide) are set as a deploy sets them.
    migrate.migrate(url)
    return url


def drop_database(url: str) -> None:
    admin = connect(with_database(url, "postgres"), autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')
    finally:
        admin.close()


def _drop_orphans(cur) -> None:
    """Drop test databases whose run died without cleaning up."""
    cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'ledgerline\\_test\\_%'")
    for (name,) in cur.fetchall():
        pid = int(name.split("_")[2])
        if not _alive(pid):
            with contextlib.suppress(psycopg2.Error):
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
