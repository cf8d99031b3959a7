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
