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


def test_the_real_migrations_are_all_applied_to_the_test_database(database_url):
    assert migrate.status(database_url)["pending"] == []
