"""The migration runner: ordered, recorded with checksums, re-runnable, edit-proof."""

import os

import pytest

from ledgerline.db import migrate
from ledgerline.db.connection import connect, with_database
from ledgerline.db.testing import drop_database


@pytest.fixture
def scratch_db(database_url):
    """An empty database on the same server."""
    name = f"ledgerline_test_{os.getpid()}_scratch"
    admin = connect(with_database(database_url, "postgres"), autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    url = with_database(database_url, name)
    yield url
    drop_database(url)


def write(directory, name, sql):
    (directory / name).write_text(sql)


def test_migrations_apply_in_order_once_and_rerun_is_a_no_op(scratch_db, tmp_path):
    write(tmp_path, "0001_first.sql", "CREATE TABLE t1 (id int PRIMARY KEY);")
    write(tmp_path, "0002_second.sql", "CREATE TABLE t2 (id int REFERENCES t1 (id) DEFERRABLE);")

    first = migrate.migrate(scratch_db, directory=tmp_path)
    second = migrate.migrate(scratch_db, directory=tmp_path)

    assert first == ["0001_first", "0002_second"]
    assert second == []


def test_an_edited_applied_migration_is_an_error(scratch_db, tmp_path):
    write(tmp_path, "0001_first.sql", "CREATE TABLE t1 (id int);")
    migrate.migrate(scratch_db, directory=tmp_path)
    write(tmp_path, "0001_first.sql", "CREATE TABLE t1 (id bigint);")

    with pytest.raises(migrate.MigrationError, match="edited after it was applied"):
        migrate.migrate(scratch_db, directory=tmp_path)


def test_a_failing_migration_leaves_nothing_behind(scratch_db, tmp_path):
    write(tmp_path, "0001_first.sql", "CREATE TABLE t1 (id int); SELECT no_such_function();")

    with pytest.raises(migrate.MigrationError, match="0001_first failed"):
        migrate.migrate(scratch_db, directory=tmp_path)

    conn = connect(scratch_db, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('t1'), (SELECT count(*) FROM schema_migrations)")
        assert cur.fetchone() == (None, 0)
    conn.close()


def test_migrated_objects_belong_to_the_owner_role_not_the_app(scratch_db, tmp_path):
    write(tmp_path, "0001_first.sql", "CREATE TABLE t1 (id int);")
    migrate.migrate(scratch_db, directory=tmp_path)

    conn = connect(scratch_db, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT tableowner FROM pg_tables WHERE tablename = 't1'")
        assert cur.fetchone()[0] == "ledgerline_owner"
    conn.close()


def test_a_database_ahead_of_the_code_is_refused(scratch_db, tmp_path):
    write(tmp_path, "0001_first.sql", "SELECT 1;")
    write(tmp_path, "0002_second.sql", "SELECT 2;")
    migrate.migrate(scratch_db, directory=tmp_path)
    (tmp_path / "0002_second.sql").unlink()

    with pytest.raises(migrate.MigrationError, match="does not know"):
        migrate.migrate(scratch_db, directory=tmp_path)


def test_a_rollback_to_older_code_accepts_the_newer_database_and_applies_nothing(scratch_db, tmp_path):
    # CloudFormation rolls an update back by calling the migration resource again with
    # the previous code: it must not fail (UPDATE_ROLLBACK_FAILED wedges the stack).
    write(tmp_path, "0001_first.sql", "SELECT 1;")
    write(tmp_path, "0002_second.sql", "CREATE TABLE t2 (id int);")
    migrate.migrate(scratch_db, directory=tmp_path)
    (tmp_path / "0002_second.sql").unlink()

    assert migrate.migrate(scratch_db, directory=tmp_path, allow_newer_database=True) == []


def test_an_older_code_still_refuses_a_history_with_holes_or_edits(scratch_db, tmp_path):
    write(tmp_path, "0001_first.sql", "SELECT 1;")
    write(tmp_path, "0002_second.sql", "SELECT 2;")
    migrate.migrate(scratch_db, directory=tmp_path)
    (tmp_path / "0001_first.sql").unlink()
    with pytest.raises(migrate.MigrationError, match="before later ones"):
        migrate.migrate(scratch_db, directory=tmp_path, allow_newer_database=True)
    write(tmp_path, "0001_first.sql", "SELECT 1;")
    write(tmp_path, "0002_second.sql", "SELECT 22;")
    with pytest.raises(migrate.MigrationError, match="edited"):
        migrate.migrate(scratch_db, directory=tmp_path, allow_newer_database=True)


def test_a_migration_runs_with_the_migrators_own_timeouts(scratch_db, tmp_path):
    # The application's 5 s would cut a migration of a big table; the lock timeout keeps
    # a migration from queueing behind live traffic.
    write(
        tmp_path,
        "0001_settings.sql",
        "CREATE TABLE seen AS SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt;",
    )

    migrate.migrate(scratch_db, directory=tmp_path)

    conn = connect(scratch_db, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT st, lt FROM seen")
        assert cur.fetchone() == ("15min", "10s")
    conn.close()


def test_the_application_role_starts_every_session_with_its_timeouts_and_utc(app_conn, owner_conn):
    # Set on the role (nothing is sent at connect, which RDS Proxy and PgBouncer require).
    with app_conn.cursor() as cur:
        cur.execute("SELECT current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout'),"
                    " current_setting('TimeZone')")  # fmt: skip
        assert cur.fetchone() == ("5s", "30s", "UTC")
    with owner_conn.cursor() as cur:
        cur.execute("SELECT current_setting('TimeZone')")
        assert cur.fetchone()[0] == "UTC"


def test_connections_send_no_startup_options(app_conn, owner_conn):
    for conn in (app_conn, owner_conn):
        assert "options" not in conn.dsn and not conn.get_dsn_parameters().get("options")


def test_the_real_migrations_are_all_applied_to_the_test_database(database_url):
    assert migrate.status(database_url)["pending"] == []


# Routines: one file per function, re-applied when its text changes ------------------------

_SNAPSHOT_FUNCTIONS = """
SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.proconfig, p.prosecdef, p.proacl::text[],
       pg_get_userbyid(p.proowner)
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
"""
# A partition's clone of its partitioned table's row trigger (tgparentid) is the parent
# trigger's, defined with it (audit_log's monthly partitions).
_SNAPSHOT_TRIGGERS = """
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgfoid::regproc::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND c.relnamespace = 'public'::regnamespace
"""


def snapshot(cur):
    """Every function (definition, SET options, SECURITY DEFINER, grants, owner) and trigger."""
    cur.execute(_SNAPSHOT_FUNCTIONS)
    functions = {row[0]: row[1:] for row in cur.fetchall()}
    cur.execute(_SNAPSHOT_TRIGGERS)
    triggers = {(row[0], row[1]): row[2:] for row in cur.fetchall()}
    return functions, triggers


def function_body(url, name):
    conn = connect(url, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT p.prosrc FROM pg_proc p WHERE p.proname = %s", (name,))
        rows = [r[0] for r in cur.fetchall()]
    conn.close()
    return rows


def folders(tmp_path):
    migrations, routines = tmp_path / "migrations", tmp_path / "routines"
    migrations.mkdir()
    routines.mkdir()
    return migrations, routines


def test_routines_apply_after_the_migrations_and_again_only_when_their_text_changes(scratch_db, tmp_path):
    migrations, routines = folders(tmp_path)
    write(migrations, "0001_first.sql", "CREATE TABLE t1 (id int PRIMARY KEY);")
    write(
        routines,
        "t1_count.sql",
        "CREATE OR REPLACE FUNCTION t1_count() RETURNS bigint LANGUAGE sql AS $$ SELECT 1::bigint $$;",
    )
    write(routines, "t1_guard.sql", """
        CREATE OR REPLACE FUNCTION t1_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
        CREATE OR REPLACE TRIGGER t1_guard BEFORE INSERT ON t1 FOR EACH ROW EXECUTE FUNCTION t1_guard();
        """)  # fmt: skip

    def run():
        return migrate.migrate(scratch_db, directory=migrations, routines_directory=routines)

    assert run() == ["0001_first", "routines/t1_count.sql", "routines/t1_guard.sql"]
    assert run() == []
    write(routines, "t1_count.sql", "CREATE OR REPLACE FUNCTION t1_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM t1 $$;")  # fmt: skip
    assert run() == ["routines/t1_count.sql"]
    assert function_body(scratch_db, "t1_count") == [" SELECT count(*) FROM t1 "]

    conn = connect(scratch_db, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 't1_count'")
        assert cur.fetchone()[0] == "ledgerline_owner"
        cur.execute("SELECT name FROM schema_routines ORDER BY name")
        assert [r[0] for r in cur.fetchall()] == ["t1_count", "t1_guard"]
    conn.close()


def test_a_routine_that_a_migration_dropped_is_applied_again_although_its_file_did_not_change(scratch_db, tmp_path):
    migrations, routines = folders(tmp_path)
    write(migrations, "0001_first.sql", "CREATE TABLE t1 (id int);")
    write(routines, "t1_guard.sql", """
        CREATE OR REPLACE FUNCTION t1_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
        CREATE OR REPLACE TRIGGER t1_guard BEFORE INSERT ON t1 FOR EACH ROW EXECUTE FUNCTION t1_guard();
        """)  # fmt: skip
    migrate.migrate(scratch_db, directory=migrations, routines_directory=routines)
    # A table rebuilt by a migration loses its triggers; a dropped function, itself.
    write(migrations, "0002_rebuild.sql", "DROP TABLE t1; CREATE TABLE t1 (id bigint);")

    assert migrate.migrate(scratch_db, directory=migrations, routines_directory=routines) == [
        "0002_rebuild",
        "routines/t1_guard.sql",
    ]
    conn = connect(scratch_db, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 't1'::regclass")
        assert cur.fetchall() == [("t1_guard",)]
    conn.close()


def test_routine_bodies_are_checked_when_they_run_so_files_apply_in_name_order(scratch_db, tmp_path):
    migrations, routines = folders(tmp_path)
    write(routines, "a_first.sql", "CREATE OR REPLACE FUNCTION a_first() RETURNS int LANGUAGE sql AS $$ SELECT z_last() $$;")  # fmt: skip
    write(routines, "z_last.sql", "CREATE OR REPLACE FUNCTION z_last() RETURNS int LANGUAGE sql AS $$ SELECT 7 $$;")

    migrate.migrate(scratch_db, directory=migrations, routines_directory=routines)

    conn = connect(scratch_db, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT a_first()")
        assert cur.fetchone()[0] == 7
    conn.close()


def test_a_second_overload_of_a_routine_is_refused_and_nothing_changes(scratch_db, tmp_path):
    migrations, routines = folders(tmp_path)
    write(routines, "f.sql", "CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql AS $$ SELECT a $$;")
    migrate.migrate(scratch_db, directory=migrations, routines_directory=routines)
    write(
        routines, "f.sql", "CREATE OR REPLACE FUNCTION f(a int, b int) RETURNS int LANGUAGE sql AS $$ SELECT a + b $$;"
    )

    with pytest.raises(
        migrate.MigrationError, match=r"f\(integer,integer\) next to f\(integer\): one function per name"
    ):
        migrate.migrate(scratch_db, directory=migrations, routines_directory=routines)
    assert function_body(scratch_db, "f") == [" SELECT a "]

    # The way to change the arguments: a migration drops the old function first.
    write(migrations, "0001_drop_f.sql", "DROP FUNCTION f(int);")
    assert migrate.migrate(scratch_db, directory=migrations, routines_directory=routines) == [
        "0001_drop_f",
        "routines/f.sql",
    ]
    assert function_body(scratch_db, "f") == [" SELECT a + b "]


def test_a_changed_return_type_fails_with_a_hint_to_drop_the_function_in_a_migration(scratch_db, tmp_path):
    migrations, routines = folders(tmp_path)
    write(routines, "f.sql", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;")
    migrate.migrate(scratch_db, directory=migrations, routines_directory=routines)
    write(routines, "f.sql", "CREATE OR REPLACE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'one' $$;")

    with pytest.raises(
        migrate.MigrationError, match=r"(?s)routines/f\.sql failed: cannot change return type.*drops the old"
    ):
        migrate.migrate(scratch_db, directory=migrations, routines_directory=routines)


def test_a_rollback_to_older_code_leaves_the_newer_routines_in_place(scratch_db, tmp_path):
    migrations, routines = folders(tmp_path)
    write(migrations, "0001_first.sql", "SELECT 1;")
    write(migrations, "0002_second.sql", "SELECT 2;")
    write(routines, "f.sql", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;")
    migrate.migrate(scratch_db, directory=migrations, routines_directory=routines)
    # The previous code: one migration fewer, the previous text of f.
    (migrations / "0002_second.sql").unlink()
    write(routines, "f.sql", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;")

    assert (
        migrate.migrate(scratch_db, directory=migrations, routines_directory=routines, allow_newer_database=True) == []
    )
    assert function_body(scratch_db, "f") == [" SELECT 2 "]


@pytest.mark.parametrize(
    ("name", "sql", "message"),
    [
        ("f", "CREATE TABLE t (id int);", "'CREATE TABLE t ...' does not belong in a routine file"),
        (
            "f",
            "CREATE OR REPLACE FUNCTION g() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
            r"named like the file \(f\)",
        ),
        ("f", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;", "say CREATE OR REPLACE"),
        (
            "f",
            "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;"
            "CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql AS $$ SELECT a $$;",
            "defines f, f",
        ),
        (
            "f",
            "CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;"
            "CREATE OR REPLACE TRIGGER t_g AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION g();",
            r"runs g\(\); it belongs in routines/g.sql",
        ),
        (
            "f",
            "CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;"
            "CREATE CONSTRAINT TRIGGER t_f AFTER INSERT ON t DEFERRABLE FOR EACH ROW EXECUTE FUNCTION f();",
            "precede it with DROP TRIGGER IF EXISTS t_f ON t",
        ),
        (
            "f",
            "CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;"
            "CREATE TRIGGER t_f AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();",
            "say CREATE OR REPLACE TRIGGER t_f",
        ),
    ],
)
def test_a_routine_file_defines_exactly_what_its_name_says(name, sql, message):
    with pytest.raises(migrate.MigrationError, match=message):
        migrate.parse_routine(name, sql)


def test_comments_and_bodies_do_not_count_as_statements_of_a_routine_file():
    routine = migrate.parse_routine(
        "f",
        """
        -- CREATE TABLE in a comment; and a semicolon
        CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $body$
        BEGIN
          CREATE TABLE nope (id int);  -- inside the body
          RETURN NULL;
        END $body$;
        DROP TRIGGER IF EXISTS t_f ON t;
        CREATE CONSTRAINT TRIGGER t_f AFTER INSERT ON t DEFERRABLE FOR EACH ROW EXECUTE FUNCTION f();
        REVOKE ALL ON FUNCTION f() FROM PUBLIC;
        """,
    )
    assert (routine.kind, routine.triggers) == ("function", (("t", "t_f"),))


def test_the_template_fingerprint_covers_the_routine_files():
    migrations = migrate.discover()
    routines = migrate.discover_routines()
    changed = [*routines[:-1], migrate.parse_routine(routines[-1].name, routines[-1].sql + "\n-- edited\n")]
    assert migrate.fingerprint() == migrate.fingerprint(migrations, routines)
    assert migrate.fingerprint(migrations, changed) != migrate.fingerprint(migrations, routines)


def test_status_lists_routines_whose_file_changed(database_url, monkeypatch):
    routines = migrate.discover_routines()
    edited = [migrate.parse_routine(r.name, r.sql + "\n") if r.name == "api_time" else r for r in routines]
    monkeypatch.setattr(migrate, "discover_routines", lambda *a, **k: edited)
    assert migrate.status(database_url)["pending_routines"] == ["api_time"]


@pytest.fixture
def fresh_db(database_url):
    """A second empty database, migrated from nothing: migrations, then every routine file
    (unlike the test database, no test has added anything to it)."""
    name = f"ledgerline_test_{os.getpid()}_fresh"
    admin = connect(with_database(database_url, "postgres"), autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    url = with_database(database_url, name)
    migrate.migrate(url)
    yield url
    drop_database(url)


def snapshot_of(url):
    conn = connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            return snapshot(cur)
    finally:
        conn.close()


def test_every_function_and_trigger_is_defined_by_the_file_its_name_says(fresh_db):
    routines = migrate.discover_routines()
    functions, triggers = snapshot_of(fresh_db)
    # Nothing in the database that no file defines (a function only the history knows).
    assert sorted({signature.split("(")[0] for signature in functions}) == sorted(r.name for r in routines)
    declared = {trigger: r.name for r in routines for trigger in r.triggers}
    assert sorted(triggers) == sorted(declared)
    # A trigger lives in the file of the function it runs.
    assert {trigger: function for trigger, (_, function) in triggers.items()} == declared


def test_each_routine_file_alone_rebuilds_its_function_triggers_and_grants_exactly(fresh_db):
    """The files are the truth: drop a function (its triggers go with it) and apply its
    file, and every definition, SET option, SECURITY DEFINER, grant and trigger is back as
    it was; what the drop removed is exactly what the file's name says."""
    conn = connect(fresh_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL ROLE ledgerline_owner")
            cur.execute("SET LOCAL check_function_bodies = off")
            before = snapshot(cur)
            for routine in migrate.discover_routines():
                cur.execute("SAVEPOINT routine")
                cur.execute(
                    "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.proname = %s"
                    " AND p.pronamespace = 'public'::regnamespace",
                    (routine.name,),
                )
                for (signature,) in cur.fetchall():
                    cur.execute(f"DROP FUNCTION {signature} CASCADE")
                functions, triggers = snapshot(cur)
                assert {s.split("(")[0] for s in set(before[0]) - set(functions)} == {routine.name}
                assert set(before[1]) - set(triggers) == set(routine.triggers), routine.label
                cur.execute(routine.sql)
                assert snapshot(cur) == before, f"{routine.label} does not rebuild what it defines"
                cur.execute("ROLLBACK TO SAVEPOINT routine")
    finally:
        conn.rollback()
        conn.close()


def test_a_database_migrated_by_the_history_gets_the_definitions_of_a_fresh_build(scratch_db, fresh_db, tmp_path):
    # A database deployed before the routine files existed: the migrations only.
    history = migrate.migrate(scratch_db, routines_directory=tmp_path)
    assert history == [f"{m.version:04d}_{m.name}" for m in migrate.discover()]
    # Then this code: every routine file is applied once, onto what the history defined.
    assert migrate.migrate(scratch_db) == [r.label for r in migrate.discover_routines()]
    assert migrate.migrate(scratch_db) == []

    assert snapshot_of(scratch_db) == snapshot_of(fresh_db)
