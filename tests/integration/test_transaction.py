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


class _CommitBreaks:
    """A real connection whose COMMIT is lost on the wire."""

    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def commit(self):
        self._conn.rollback()
        raise psycopg2.OperationalError("server closed the connection unexpectedly")


def test_nothing_is_retried_once_commit_was_sent(owner_conn):
    calls = []
    conn = get_connection()

    def work(cur):
        calls.append(1)
        cur.execute("INSERT INTO tx_probe (note) VALUES ('after-commit')")

    with pytest.raises(CommitOutcomeUnknown):
        transaction(work, connection=lambda: _CommitBreaks(conn), sleep=lambda s: None)

    assert len(calls) == 1


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
