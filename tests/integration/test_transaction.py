"""The unit of work: retried whole on transient failures, never after COMMIT."""

import contextlib
import threading

import psycopg2
import pytest

from ledgerline.db import CommitOutcomeUnknown, transaction
from ledgerline.db.connection import get_connection


@pytest.fixture(autouse=True)
def _table(owner_conn, database_url):
    with owner_conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS tx_probe (id serial PRIMARY KEY, note text)")
        cur.execute("GRANT SELECT, INSERT, UPDATE ON tx_probe TO ledgerline_app")
        cur.execute("GRANT USAGE ON SEQUENCE tx_probe_id_seq TO ledgerline_app")
        cur.execute("TRUNCATE tx_probe")
    yield


def _count(owner_conn, note):
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM tx_probe WHERE note = %s", (note,))
        return cur.fetchone()[0]


def test_a_forced_serialization_failure_is_retried_and_commits_once(owner_conn):
    calls = []

    def work(cur):
        calls.append(1)
        cur.execute("INSERT INTO tx_probe (note) VALUES ('serial')")
        if len(calls) == 1:
            cur.execute("DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = 'serialization_failure'; END $$")
        return "ok"

    assert transaction(work, sleep=lambda s: None) == "ok"
    assert len(calls) == 2
    assert _count(owner_conn, "serial") == 1


def test_a_real_deadlock_never_reaches_the_caller(owner_conn):
    with owner_conn.cursor() as cur:
        cur.execute("INSERT INTO tx_probe (id, note) VALUES (1001, 'a'), (1002, 'b')")
    barrier = threading.Barrier(2)
    results, failures = [], []

    def worker(first, second):
        def work(cur):
            cur.execute("UPDATE tx_probe SET note = note WHERE id = %s", (first,))
            with contextlib.suppress(threading.BrokenBarrierError):  # the retry runs alone
                barrier.wait(timeout=2)
            cur.execute("UPDATE tx_probe SET note = note WHERE id = %s", (second,))

        try:
            transaction(work)
            results.append(first)
        except Exception as exc:  # pragma: no cover - the assertion reports it
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=p) for p in ((1001, 1002), (1002, 1001))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert sorted(results) == [1001, 1002]


def test_a_connection_lost_before_commit_is_retried_on_a_new_connection(owner_conn):
    calls = []

    def work(cur):
        calls.append(1)
        cur.execute("INSERT INTO tx_probe (note) VALUES ('reconnect')")
        if len(calls) == 1:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()["pg_backend_pid"]
            with owner_conn.cursor() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            cur.execute("SELECT 1")  # the server is gone: raises OperationalError

    transaction(work, sleep=lambda s: None)

    assert len(calls) == 2
    assert _count(owner_conn, "reconnect") == 1
    assert not get_connection().closed


def test_nothing_is_retried_once_commit_was_sent(owner_conn):
    """The backend dies while COMMIT runs (a deferred trigger ends its own session): the
    caller learns that the outcome is unknown, and the work is not run again."""
    with owner_conn.cursor() as cur:
        cur.execute(
            """
            CREATE OR REPLACE FUNCTION tx_probe_die() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM pg_terminate_backend(pg_backend_pid());
              PERFORM pg_sleep(5);  -- the pending termination interrupts this at once
              RETURN NULL;
            END $$
            """
        )
        cur.execute("DROP TRIGGER IF EXISTS tx_probe_die ON tx_probe")
        cur.execute(
            "CREATE CONSTRAINT TRIGGER tx_probe_die AFTER INSERT ON tx_probe DEFERRABLE INITIALLY DEFERRED"
            " FOR EACH ROW WHEN (NEW.note = 'die-at-commit') EXECUTE FUNCTION tx_probe_die()"
        )
    calls = []

    def work(cur):
        calls.append(1)
        cur.execute("INSERT INTO tx_probe (note) VALUES ('die-at-commit')")

    with pytest.raises(CommitOutcomeUnknown):
        transaction(work, sleep=lambda s: None)

    assert len(calls) == 1
    assert not get_connection().closed  # the next unit of work gets a new connection


def test_begin_and_commit_travel_with_other_statements(owner_conn):
    """BEGIN goes out with the first statement and COMMIT with what the work deferred: a
    deferred statement still runs inside the transaction, and still rolls back with it."""

    def work(cur):
        cur.execute("SELECT pg_current_xact_id_if_assigned() IS NULL AS fresh, now() = statement_timestamp() AS first")
        row = cur.fetchone()
        cur.defer("INSERT INTO tx_probe (note) VALUES ('deferred')")
        return row

    row = transaction(work)
    assert row == {"fresh": True, "first": True}  # a transaction had begun with that statement
    assert _count(owner_conn, "deferred") == 1

    class Refused(Exception):
        pass

    def refused(cur):
        cur.execute("INSERT INTO tx_probe (note) VALUES ('deferred-then-refused')")
        cur.defer("INSERT INTO tx_probe (note) VALUES ('deferred-then-refused')")
        raise Refused

    with pytest.raises(Refused):
        transaction(refused)
    assert _count(owner_conn, "deferred-then-refused") == 0


def test_domain_errors_roll_back_and_are_not_retried(owner_conn):
    calls = []

    class Refused(Exception):
        pass

    def work(cur):
        calls.append(1)
        cur.execute("INSERT INTO tx_probe (note) VALUES ('refused')")
        raise Refused

    with pytest.raises(Refused):
        transaction(work)

    assert len(calls) == 1
    assert _count(owner_conn, "refused") == 0


def test_retries_are_bounded(owner_conn):
    calls = []

    def work(cur):
        calls.append(1)
        cur.execute("DO $$ BEGIN RAISE EXCEPTION 'always' USING ERRCODE = 'deadlock_detected'; END $$")

    with pytest.raises(psycopg2.errors.DeadlockDetected):
        transaction(work, attempts=3, sleep=lambda s: None)

    assert len(calls) == 3


def test_statement_timeout_is_set_on_application_connections():
    def work(cur):
        cur.execute("SHOW statement_timeout")
        return cur.fetchone()["statement_timeout"]

    assert transaction(work) not in ("0", "")


def test_single_statement_work_runs_without_begin_and_refuses_a_second_statement(owner_conn):
    def one(cur):
        cur.execute("INSERT INTO tx_probe (note) VALUES ('single') RETURNING now() = statement_timestamp() AS alone")
        return cur.fetchone()["alone"]

    assert transaction(one, single_statement=True) is True
    assert _count(owner_conn, "single") == 1

    def two(cur):
        cur.execute("INSERT INTO tx_probe (note) VALUES ('single-twice')")
        cur.execute("INSERT INTO tx_probe (note) VALUES ('single-twice')")

    with pytest.raises(RuntimeError, match="second statement"):
        transaction(two, single_statement=True)
    assert _count(owner_conn, "single-twice") == 1  # the first ran, as its own transaction
    assert get_connection().info.transaction_status == 0  # idle: nothing left open
