"""Migrations and routines: the schema's history, and the current definition of its code.

* ``migrations/NNNN_name.sql``: tables, types, sequences, indexes and data. Applied once
  each, in order, recorded with their checksum. An applied file whose text changed is an
  error: fix forward with a new migration instead.
* ``routines/<name>.sql``: one function (or procedure, or view) per file, named after it,
  with its triggers and grants: its CURRENT definition. Applied after the migrations,
  again whenever its text changes (recorded with its checksum in ``schema_routines``),
  or when something it defines is missing. ``routines/README.md`` says how to change,
  add and remove one, and when that needs a migration.

Each file runs in its own transaction, as the owner role (so the owner owns every object
and the application role gets only what is granted), with the migrator's timeouts.
Re-running is a no-op.
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
ROUTINES_DIR = Path(__file__).parent / "routines"
_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_ROUTINE_FILE = re.compile(r"[a-z][a-z0-9_]*\.sql")
_LOCK_KEY = 0x4C45444745524C  # "LEDGERL": one migrator at a time per database
_README = "layers/common/python/ledgerline/db/routines/README.md"


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


@dataclass(frozen=True)
class Routine:
    """One file of ``routines/``: the function (or view) ``name`` and its triggers."""

    name: str
    kind: str  # "function" (a function or a procedure) or "view"
    sql: str
    triggers: tuple[tuple[str, str], ...]  # (table, trigger) pairs the file creates

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"routines/{self.name}.sql"


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


def discover_routines(directory: Path | None = ROUTINES_DIR) -> list[Routine]:
    """The routine files in name order, each checked to define exactly what its name says."""
    if directory is None:
        return []
    found = []
    for path in sorted(directory.glob("*.sql")):
        if not _ROUTINE_FILE.fullmatch(path.name):
            raise MigrationError(
                f"routines/{path.name}: routine files are named <function_name>.sql (lower snake case)"
            )
        found.append(parse_routine(path.stem, path.read_text()))
    return found


def fingerprint(migrations: list[Migration] | None = None, routines: list[Routine] | None = None) -> str:
    """One hash of every migration and routine file: names a template database built from
    exactly these."""
    h = hashlib.sha256()
    for m in discover() if migrations is None else migrations:
        h.update(f"{m.version}:{m.checksum}\n".encode())
    for r in discover_routines() if routines is None else routines:
        h.update(f"routine {r.name}:{r.checksum}\n".encode())
    return h.hexdigest()[:16]


def migrate(
    url: str | None = None,
    *,
    app_password: str | None = None,
    directory: Path = MIGRATIONS_DIR,
    routines_directory: Path | None = None,
    allow_newer_database: bool = False,
) -> list[str]:
    """Bring the database up to date; return what was applied now: the migrations' names,
    then ``routines/<name>.sql`` for each routine file applied.

    ``routines_directory``: the routine files; by default ``routines/`` when ``directory``
    is the packaged ``migrations/``, and none for any other ``directory``.

    ``allow_newer_database``: a database that already has migrations this code does not
    know is accepted as it is (nothing applied, routines included: the newer code's
    definitions stay), instead of refused. Migrations are forward-only and additive, so
    older code runs on a newer schema; this is what a deployment that rolls back to the
    previous code meets.
    """
    url = url or owner_url()
    migrations = discover(directory)
    if routines_directory is None and directory == MIGRATIONS_DIR:
        routines_directory = ROUTINES_DIR
    routines = discover_routines(routines_directory)
    conn = connect(url, autocommit=True, application_name="ledgerline-migrate")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                _bootstrap_roles(cur, database_name(url), app_password)
                applied = _applied(cur)
                newer = _check_history(migrations, applied, allow_newer_database=allow_newer_database)
                done = [_apply(conn, m) for m in migrations if m.version not in applied]
                if not newer:
                    done += [_apply_routine(conn, r) for r in _stale(cur, routines)]
                    _forget_removed(cur, routines)
                return done
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    finally:
        conn.close()


def status(url: str | None = None) -> dict[str, Any]:
    conn = connect(url or owner_url(), autocommit=True)
    try:
        with conn.cursor() as cur:
            applied = _applied(cur) if _has_table(cur) else {}
            stale = _stale(cur, discover_routines())
    finally:
        conn.close()
    pending = [m.name for m in discover() if m.version not in applied]
    return {"schema_version": max(applied, default=0), "pending": pending, "pending_routines": [r.name for r in stale]}


# Routine files -------------------------------------------------------------------------

_BODY = re.compile(r"\$((?:[A-Za-z_]\w*)?)\$.*?\$\1\$", re.S)  # $$...$$, $tag$...$tag$
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_DEFINES = re.compile(r"CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE|VIEW)\s+(?:public\.)?(\w+)", re.I)
_TRIGGER = re.compile(
    r"CREATE\s+(OR\s+REPLACE\s+)?(CONSTRAINT\s+)?TRIGGER\s+(\w+)\s.*?\sON\s+(?:public\.)?(\w+)\s"
    r".*\sEXECUTE\s+(?:FUNCTION|PROCEDURE)\s+(?:public\.)?(\w+)\s*\(",
    re.I | re.S,
)
_DROP_TRIGGER = re.compile(r"DROP\s+TRIGGER\s+IF\s+EXISTS\s+(\w+)\s+ON\s+(?:public\.)?(\w+)", re.I)
# What a routine file may say: its definition, its triggers, its grants, comments on it.
_ALLOWED = re.compile(
    r"(CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE|VIEW|TRIGGER)|CREATE\s+CONSTRAINT\s+TRIGGER"
    r"|DROP\s+TRIGGER\s+IF\s+EXISTS|GRANT|REVOKE|COMMENT\s+ON)\s",
    re.I,
)


def parse_routine(name: str, sql: str) -> Routine:
    """Check that ``sql`` defines exactly the function (or view) ``name``, with only its
    own triggers; return it. (Bodies and comments are not read: only the statements.)"""
    label = f"routines/{name}.sql"
    text = _COMMENT.sub(" ", _BODY.sub("$$ $$", sql))
    statements = [s.strip() for s in text.split(";") if s.strip()]
    for statement in statements:
        if not _ALLOWED.match(statement):
            first = " ".join(statement.split()[:3])
            raise MigrationError(
                f"{label}: '{first} ...' does not belong in a routine file (it holds one function, its "
                f"triggers and its grants; tables, types, indexes and data go in a migration). See {_README}"
            )
    defined = [(m.group(2).lower(), m.group(3).lower(), bool(m.group(1))) for m in map(_DEFINES.match, statements) if m]
    if [d[1] for d in defined] != [name]:
        raise MigrationError(
            f"{label}: a routine file defines exactly one function, procedure or view, named like the file "
            f"({name}); it defines {', '.join(d[1] for d in defined) or 'none'}"
        )
    kind, _, replace = defined[0]
    if not replace:
        raise MigrationError(f"{label}: say CREATE OR REPLACE (the file is applied again whenever it changes)")
    triggers = []
    dropped = {(m.group(2).lower(), m.group(1).lower()) for m in map(_DROP_TRIGGER.match, statements) if m}
    for m in filter(None, map(_TRIGGER.match, statements)):
        replace, constraint, trigger, table, function = (
            bool(m.group(1)), bool(m.group(2)), m.group(3).lower(), m.group(4).lower(), m.group(5).lower()
        )  # fmt: skip
        if function != name:
            raise MigrationError(f"{label}: trigger {trigger} runs {function}(); it belongs in routines/{function}.sql")
        if constraint and (table, trigger) not in dropped:
            raise MigrationError(
                f"{label}: constraint trigger {trigger} has no CREATE OR REPLACE; "
                f"precede it with DROP TRIGGER IF EXISTS {trigger} ON {table}"
            )
        if not constraint and not replace:
            raise MigrationError(f"{label}: say CREATE OR REPLACE TRIGGER {trigger} (the file is applied again)")
        triggers.append((table, trigger))
    return Routine(name=name, kind="view" if kind == "view" else "function", sql=sql, triggers=tuple(triggers))


def _stale(cur: Any, routines: list[Routine]) -> list[Routine]:
    """The routines to apply: changed since they were last applied, never applied, or with
    something they define missing (a migration dropped it)."""
    if not routines:
        return []
    cur.execute("SELECT to_regclass('public.schema_routines') IS NOT NULL")
    recorded: dict[str, str] = {}
    if cur.fetchone()[0]:
        cur.execute("SELECT name, checksum FROM schema_routines")
        recorded = dict(cur.fetchall())
    cur.execute(
        """
        SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
        UNION
        SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v'
        """
    )
    present = {row[0] for row in cur.fetchall()}
    cur.execute(
        """
        SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace
        """
    )
    triggers = {(table, trigger) for table, trigger in cur.fetchall()}
    return [
        r
        for r in routines
        if recorded.get(r.name) != r.checksum or r.name not in present or not set(r.triggers) <= triggers
    ]


def _apply_routine(conn: Any, routine: Routine) -> str:
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            _as_migrator(cur)
            # Files apply in name order whatever calls what: bodies are checked when they run.
            cur.execute("SET LOCAL check_function_bodies = off")
            before = _signatures(cur, routine)
            cur.execute(routine.sql)
            after = _signatures(cur, routine)
            if not after:
                raise MigrationError(f"{routine.label} did not create {routine.kind} {routine.name}")
            if len(after) > 1:
                added = ", ".join(sorted(after - before)) or "?"
                existing = ", ".join(sorted(after & before)) or "?"
                raise MigrationError(
                    f"{routine.label} would create {added} next to {existing}: one function per name. Changing a "
                    f"function's arguments or return type needs a migration that drops the old one first "
                    f"(DROP FUNCTION {existing}); see {_README}"
                )
            cur.execute(
                """
                INSERT INTO schema_routines (name, checksum) VALUES (%s, %s)
                ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()
                """,
                (routine.name, routine.checksum),
            )
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        hint = ""
        if exc.pgcode == "42P13":  # invalid_function_definition: return type, argument names, defaults
            hint = (
                f" (CREATE OR REPLACE cannot change a function's return type, argument names or remove defaults: "
                f"a migration drops the old function first; see {_README})"
            )
        raise MigrationError(f"{routine.label} failed: {str(exc).strip()}{hint}") from exc
    except MigrationError:
        conn.rollback()
        raise
    finally:
        conn.autocommit = True
    return routine.label


def _signatures(cur: Any, routine: Routine) -> set[str]:
    if routine.kind == "view":
        cur.execute("SELECT to_regclass(%s)::text", (f"public.{routine.name}",))
        view = cur.fetchone()[0]
        return {view} if view else set()
    cur.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.proname = %s AND p.pronamespace = 'public'::regnamespace",
        (routine.name,),
    )
    return {row[0] for row in cur.fetchall()}


def _forget_removed(cur: Any, routines: list[Routine]) -> None:
    """A routine file that was removed (its function dropped by a migration) is no longer
    recorded, so that adding it back applies it."""
    if routines:
        cur.execute("DELETE FROM schema_routines WHERE name <> ALL (%s)", ([r.name for r in routines],))


# Roles and bookkeeping -------------------------------------------------------------------


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
    cur.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_routines (
          name       text PRIMARY KEY,
          checksum   text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    cur.execute(f"GRANT SELECT ON schema_migrations, schema_routines TO {APP_ROLE}")
    cur.execute(f"REVOKE INSERT, UPDATE, DELETE ON schema_migrations, schema_routines FROM {APP_ROLE}")
    cur.execute("RESET ROLE")
    cur.execute("SELECT version, checksum FROM schema_migrations")
    return dict(cur.fetchall())


def _check_history(migrations: list[Migration], applied: dict[int, str], *, allow_newer_database: bool = False) -> bool:
    """Refuse a history this code cannot continue; return whether the database is newer
    than the code (has migrations it does not know, which ``allow_newer_database`` accepts)."""
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
    return bool(unknown)


def _as_migrator(cur: Any) -> None:
    """This transaction runs as the schema's owner with the migrator's limits: longer than
    the application's 5 s, but never queued behind live traffic for long (a migration that
    cannot take its locks fails the deploy instead)."""
    cfg = settings()
    cur.execute("SET LOCAL statement_timeout = %s", (f"{cfg.migration_statement_timeout_ms}ms",))
    cur.execute("SET LOCAL lock_timeout = %s", (f"{cfg.migration_lock_timeout_ms}ms",))
    cur.execute(f"SET LOCAL ROLE {OWNER_ROLE}")


def _apply(conn: Any, migration: Migration) -> str:
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            _as_migrator(cur)
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
