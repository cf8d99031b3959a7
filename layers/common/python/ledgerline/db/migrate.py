"""Migrations: ordered plain SQL files, applied once each, recorded with their checksum.

``NNNN_name.sql`` files in ``migrations/`` run in order, each in its own transaction, as
the owner role (so the owner owns every object and the application role gets only what
is granted). Re-running is a no-op; an applied file whose text changed is an error: fix
forward with a new migration instead.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2

from ledgerline.config import settings
from ledgerline.db.connection import APP_ROLE, OWNER_ROLE, connect, database_name, owner_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_LOCK_KEY = 0x4C45444745524C  # "LEDGERL": one migrator at a time per database


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _FILE.fullmatch(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


def fingerprint(migrations: list[Migration] | None = None) -> str:
    """One hash of every migration: names a template database built from exactly these."""
    h = hashlib.sha256()
    for m in migrations or discover():
        h.update(f"{m.version}:{m.checksum}\n".encode())
    return h.hexdigest()[:16]


def migrate(
    url: str | None = None,
    *,
    app_password: str | None = None,
    directory: Path = MIGRATIONS_DIR,
    allow_newer_database: bool = False,
) -> list[str]:
    """Bring the database up to date; return the names of the migrations applied now.

    ``allow_newer_database``: a database that already has migrations this code does not
    know is accepted as it is (nothing applied), instead of refused. Migrations are
    forward-only and additive, so older code runs on a newer schema; this is what a
    deployment that rolls back to the previous code meets.
    """
    url = url or owner_url()
    migrations = discover(directory)
    conn = connect(url, autocommit=True, application_name="ledgerline-migrate")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                _bootstrap_roles(cur, database_name(url), app_password)
                applied = _applied(cur)
                _check_history(migrations, applied, allow_newer_database=allow_newer_database)
                return [_apply(conn, m) for m in migrations if m.version not in applied]
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    finally:
        conn.close()


def status(url: str | None = None) -> dict[str, Any]:
    conn = connect(url or owner_url(), autocommit=True)
    try:
        with conn.cursor() as cur:
            applied = _applied(cur) if _has_table(cur) else {}
    finally:
        conn.close()
    pending = [m.name for m in discover() if m.version not in applied]
    return {"schema_version": max(applied, default=0), "pending": pending}


def _bootstrap_roles(cur: Any, database: str, app_password: str | None) -> None:
    # Roles are cluster-wide, so creating them is idempotent rather than a migration.
    cur.execute(
        """
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %(owner)s) THEN
            EXECUTE format('CREATE ROLE %%I NOLOGIN', %(owner)s);
          END IF;
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %(app)s) THEN
            EXECUTE format('CREATE ROLE %%I LOGIN', %(app)s);
          END IF;
        END $$;
        """,
        {"owner": OWNER_ROLE, "app": APP_ROLE},
    )
    cur.execute(f"GRANT {OWNER_ROLE} TO CURRENT_USER")
    cur.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO {APP_ROLE}, {OWNER_ROLE}')
    cur.execute(f'GRANT CREATE ON DATABASE "{database}" TO {OWNER_ROLE}')
    cur.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {OWNER_ROLE}")
    cur.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    cur.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {APP_ROLE}")
    # Mutable tables by default; immutable tables REVOKE what they must not allow.
    cur.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}"
    )
    cur.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}"
    )
    if app_password:
        cur.execute(f"ALTER ROLE {APP_ROLE} PASSWORD %s", (app_password,))
    _session_defaults(cur, database)


def _session_defaults(cur: Any, database: str) -> None:
    """What every backend of the application role starts with. Set here, on the role,
    because nothing may be sent at connect (RDS Proxy refuses startup options) and a
    transaction-pooling proxy keeps no SET between transactions."""
    timeout = settings().statement_timeout_ms
    # A statement that runs longer than this is a bug or an attack; a session idle inside
    # a transaction would hold row locks on money.
    cur.execute(f"ALTER ROLE {APP_ROLE} SET statement_timeout = %s", (f"{timeout}ms",))
    cur.execute(f"ALTER ROLE {APP_ROLE} SET idle_in_transaction_session_timeout = %s", (f"{timeout * 6}ms",))
    cur.execute(f"ALTER ROLE {APP_ROLE} SET TimeZone = 'UTC'")
    # And UTC for every other role in this database (the migrator, operators' sessions).
    cur.execute(f"ALTER DATABASE \"{database}\" SET TimeZone = 'UTC'")


def _has_table(cur: Any) -> bool:
    cur.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    return bool(cur.fetchone()[0])


def _applied(cur: Any) -> dict[int, str]:
    cur.execute(f"SET ROLE {OWNER_ROLE}")
    cur.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version    integer PRIMARY KEY,
          name       text NOT NULL,
          checksum   text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    cur.execute(f"GRANT SELECT ON schema_migrations TO {APP_ROLE}")
    cur.execute(f"REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM {APP_ROLE}")
    cur.execute("RESET ROLE")
    cur.execute("SELECT version, checksum FROM schema_migrations")
    return dict(cur.fetchall())


def _check_history(migrations: list[Migration], applied: dict[int, str], *, allow_newer_database: bool = False) -> None:
    known = {m.version: m for m in migrations}
    unknown = sorted(v for v in applied if v not in known)
    if unknown and not allow_newer_database:
        raise MigrationError(f"database has migration {unknown[0]:04d} that this code does not know")
    if unknown and any(v > unknown[0] for v in known):
        # Older code may meet a newer schema, but not a history with holes in it.
        raise MigrationError(
            f"database has migration {unknown[0]:04d}, which this code does not know, before later ones it does"
        )
    for version, checksum in sorted(applied.items()):
        if version not in known:
            continue
        if known[version].checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{known[version].name} was edited after it was applied "
                f"(checksum {checksum[:12]} in the database, {known[version].checksum[:12]} on disk); "
                "add a new migration instead"
            )


def _apply(conn: Any, migration: Migration) -> str:
    cfg = settings()
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            # Longer than the application's 5 s, but never queued behind live traffic for
            # long: a migration that cannot take its locks fails the deploy instead.
            cur.execute("SET LOCAL statement_timeout = %s", (f"{cfg.migration_statement_timeout_ms}ms",))
            cur.execute("SET LOCAL lock_timeout = %s", (f"{cfg.migration_lock_timeout_ms}ms",))
            cur.execute(f"SET LOCAL ROLE {OWNER_ROLE}")
            cur.execute(migration.sql)
            cur.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        raise MigrationError(f"{migration.version:04d}_{migration.name} failed: {exc}") from exc
    finally:
        conn.autocommit = True
    return f"{migration.version:04d}_{migration.name}"
