"""Retention of audit_log (issue 15): monthly partitions; rows stay append-only on the
table and on every partition, for the owner too; a month leaves PostgreSQL only by
audit_log_retire, run by the owner, only once its rows are chained, shipped and
verified, and only when it is older than the months kept hot.

The retirement tests run in a database of their own: they chain and detach the whole
trail, which the rest of the run's tests read."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from ledgerline.db.connection import connect, with_database
from ledgerline.db.testing import create_test_database, drop_database

FIVE_MONTHS_ON = datetime.now(UTC) + timedelta(days=5 * 31)


@pytest.fixture
def own_db(database_url):
    url = create_test_database(with_database(database_url, "postgres"))
    conn = connect(url, autocommit=True)
    yield url, conn
    conn.close()
    drop_database(url)


def insert(cur, occurred_at=None, action="auth.logout") -> uuid.UUID:
    cur.execute(
        "INSERT INTO audit_log (category, action, actor_type, resource_type, content_hash, occurred_at)"
        " VALUES ('auth', %s, 'system', 'session', '', coalesce(%s, clock_timestamp())) RETURNING id",
        (action, occurred_at),
    )
    return cur.fetchone()[0]


def partition_of(cur, audit_id) -> str:
    cur.execute("SELECT tableoid::regclass::text FROM audit_log WHERE id = %s", (audit_id,))
    return cur.fetchone()[0]


def partitions(cur) -> list[str]:
    cur.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'audit_log'::regclass ORDER BY 1"
    )
    return [r[0] for r in cur.fetchall()]


def retire(cur, now=FIVE_MONTHS_ON, keep=3):
    cur.execute("SELECT audit_log_retire(p_keep_months => %s, p_now => %s)", (keep, now))
    return cur.fetchone()[0]


def chain_and_ship_everything(cur, total: int) -> int:
    """What the shipper does (its routines, audit_chain_*), batch after batch, until all
    ``total`` rows are chained; returns the last seq. Rows are chained only below the
    server's oldest running transaction, and other databases of this server (other test
    runs) may hold one open for a while: wait for it, as the shipper does."""
    last, deadline = 0, time.monotonic() + 60
    while last < total and time.monotonic() < deadline:
        cur.execute("SELECT audit_chain_extend(p_limit => 1000)")
        batch = cur.fetchone()[0]
        if batch is None:
            time.sleep(0.2)
            continue
        cur.execute(
            "SELECT audit_chain_shipped(p_first_seq => %s, p_objects => '[]', p_checkpoint => 'test')",
            (batch["first_seq"],),
        )
        last = batch["last_seq"]
    return last


def test_rows_land_in_their_month_and_beyond_the_months_made_in_the_default(owner_conn):
    with owner_conn.cursor() as cur:
        now_row = insert(cur)
        month = (datetime.now(UTC).replace(day=1) + timedelta(days=40)).replace(day=15)
        later_row = insert(cur, month)
        far_row = insert(cur, datetime.now(UTC) + timedelta(days=365 * 20))
        assert partition_of(cur, now_row) == "audit_log_p_initial"
        assert partition_of(cur, later_row) == f"audit_log_p{month:%Y_%m}"
        assert partition_of(cur, far_row) == "audit_log_p_default"
        cur.execute("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'audit_log'::regclass")
        assert cur.fetchone()[0] == "r"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET action = 'auth.login_succeeded' WHERE id = %s",
        "DELETE FROM {table} WHERE id = %s",
        "TRUNCATE {table}",
    ],
)
def test_the_table_and_its_partitions_refuse_changes_for_the_owner(owner_conn, statement):
    with owner_conn.cursor() as cur:
        month = (datetime.now(UTC).replace(day=1) + timedelta(days=40)).replace(day=15)
        rows = [insert(cur), insert(cur, month)]
        # A row through the parent and through its own partition; TRUNCATE on every partition.
        targets = [(table, row) for row in rows for table in ("audit_log", partition_of(cur, row))]
        if statement.startswith("TRUNCATE"):
            targets = [("audit_log", None)]
        for table, row in targets:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="append-only"):
                cur.execute(statement.format(table=table), (row,))
        cur.execute("SELECT count(*) FROM audit_log WHERE id = ANY(%s)", (rows,))
        assert cur.fetchone()[0] == 2


def test_the_application_role_can_neither_retire_nor_detach(app_conn):
    with app_conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cur.execute("SELECT audit_log_retire()")
    with app_conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cur.execute("ALTER TABLE audit_log DETACH PARTITION audit_log_p_default")
    with app_conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cur.execute("SELECT count(*) FROM audit_log_p_initial")


def test_a_month_leaves_only_once_chained_shipped_and_verified(own_db):
    _, conn = own_db
    with conn.cursor() as cur:
        # In this order, so the chain (commit order) ends with next month's row.
        hot = insert(cur, FIVE_MONTHS_ON)
        old = insert(cur)  # this month: audit_log_p_initial (everything before next month)
        month = (datetime.now(UTC).replace(day=1) + timedelta(days=40)).replace(day=15)
        next_month = insert(cur, month)
        cur.execute("SELECT count(*) FROM audit_log")
        total = cur.fetchone()[0]

        # Five months on, the initial partition and next month's are past the three kept hot,
        # but nothing is chained yet: both stay, and the answer says why.
        first = retire(cur)
        assert first["detached"] == []
        assert {k["partition"] for k in first["kept"]} == {"audit_log_p_initial", f"audit_log_p{month:%Y_%m}"}
        assert all("not chained" in k["reason"] for k in first["kept"])

        # Chained and shipped, not yet verified: still kept.
        last_seq = chain_and_ship_everything(cur, total)
        assert last_seq == total
        assert retire(cur)["detached"] == []

        # Verified through all but the last row (next month's): this month leaves, next month stays.
        cur.execute("INSERT INTO audit_log_verified (through_seq, verified_by) VALUES (%s, 'test')", (last_seq - 1,))
        partly = retire(cur)
        assert partly["detached"] == ["audit_log_p_initial"]
        assert [k["partition"] for k in partly["kept"]] == [f"audit_log_p{month:%Y_%m}"]
        assert "1 past the last verification" in partly["kept"][0]["reason"]

        # Verified through the head: next month leaves too; the hot one stays.
        cur.execute("INSERT INTO audit_log_verified (through_seq, verified_by) VALUES (%s, 'test')", (last_seq,))
        done = retire(cur)
        assert done["detached"] == [f"audit_log_p{month:%Y_%m}"]
        assert done["kept"] == []
        assert "audit_log_p_initial" not in partitions(cur)
        cur.execute("SELECT array_agg(id) FROM audit_log WHERE id = ANY(%s)", ([old, next_month, hot],))
        assert cur.fetchone()[0] == [hot]
        # The chain itself stays whole (audit verify reads the rows that left from the bucket).
        cur.execute("SELECT count(*) FROM audit_chain")
        assert cur.fetchone()[0] == total
        # And a new row (five months on) still finds its month.
        assert partition_of(cur, insert(cur, FIVE_MONTHS_ON)) == f"audit_log_p{FIVE_MONTHS_ON:%Y_%m}"


def test_months_ahead_are_created_and_keeping_less_than_a_month_is_refused(own_db):
    _, conn = own_db
    with conn.cursor() as cur:
        before = set(partitions(cur))
        far = datetime.now(UTC) + timedelta(days=15 * 31)
        made = retire(cur, now=far, keep=3)["created"]
        assert made and set(made) == set(partitions(cur)) - before
        assert retire(cur, now=far, keep=3)["created"] == []  # once
        # A month whose rows already went to the default partition is not made (it would
        # have to move them): the answer says so, and the rows stay where they are.
        stray_month = (far.replace(day=1) + timedelta(days=13 * 31)).replace(day=10)
        stray = insert(cur, stray_month)
        report = retire(cur, now=far + timedelta(days=31), keep=3)  # one more month ahead: the stray one
        assert f"audit_log_p{stray_month:%Y_%m}" not in report["created"]
        assert {
            "partition": f"audit_log_p{stray_month:%Y_%m}",
            "reason": ("not created: the default partition already holds rows of this month"),
        } in report["kept"]
        assert partition_of(cur, stray) == "audit_log_p_default"
        with pytest.raises(psycopg2.errors.InvalidParameterValue):
            retire(cur, keep=0)


def test_the_cli_retires_as_the_owner_and_prints_what_it_did(own_db):
    import json
    import os
    import subprocess
    import sys

    url, _ = own_db
    env = {**os.environ, "DATABASE_URL": url}
    run = [sys.executable, "-m", "ledgerline.cli", "audit", "retire", "--keep-months", "3"]
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    # Nothing is older than three months in a new database: nothing leaves, the next months exist.
    report = json.loads(done.stdout)
    assert (report["detached"], report["kept"]) == ([], [])
