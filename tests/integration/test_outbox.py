"""The transactional outbox: written with the change, relayed once, never edited."""

from __future__ import annotations

import json
import threading
from collections import Counter

import psycopg2
import pytest

from ledgerline import outbox
from ledgerline.aws.queues import BatchResult
from ledgerline.db import connection as db_connection
from ledgerline.db.tx import transaction


@pytest.fixture
def app(module_app, module_db):
    """The application role's connections (tests/integration/conftest.py), on an empty
    outbox: the owner empties it first (the app role may not)."""
    owner = db_connection.connect(module_db, autocommit=True)
    with owner.cursor() as cur:
        cur.execute("ALTER TABLE outbox DISABLE TRIGGER USER")
        cur.execute("DELETE FROM outbox")
        cur.execute("ALTER TABLE outbox ENABLE TRIGGER USER")
    owner.close()
    return module_app


def _enqueue(app, n, queue="notifications", *, publish=False):
    """Commit ``n`` rows. Without ``publish`` the process "dies" right after COMMIT: the
    publish its transaction registered never runs, and the rows wait for the sweep."""

    def work(cur):
        ids = [outbox.enqueue(cur, queue, {"kind": "test", "n": i}) for i in range(n)]
        if not publish:
            cur.after_commit.clear()
        return ids

    return transaction(work, connection=app)


def _row(app, outbox_id):
    return transaction(
        lambda cur: (cur.execute("SELECT * FROM outbox WHERE id = %s", (outbox_id,)), cur.fetchone())[1], connection=app
    )


class RecordingSender:
    def __init__(self, fail_ids=(), barrier=None):
        self.sent = Counter()
        self.fail_ids = set(fail_ids)
        self.barrier = barrier
        self.lock = threading.Lock()

    def __call__(self, queue, messages):
        if self.barrier is not None:
            self.barrier.wait(timeout=10)  # both relays hold their claimed batch right now
        result = BatchResult()
        with self.lock:
            for m in messages:
                assert m.attributes["outbox_id"] == m.id
                if int(m.id) in self.fail_ids:
                    result.failed[m.id] = "InternalError: simulated"
                else:
                    self.sent[int(m.id)] += 1
                    result.sent[m.id] = f"msg-{m.id}"
        return result


def test_an_event_exists_only_if_its_transaction_committed(app):
    class Boom(Exception):
        pass

    def work(cur):
        outbox.enqueue(cur, "notifications", {"kind": "password_reset"})
        raise Boom

    with pytest.raises(Boom):
        transaction(work, connection=app)
    assert transaction(outbox.pending, connection=app) == {}
    [committed] = _enqueue(app, 1)
    assert transaction(outbox.pending, connection=app) == {"notifications": 1}
    assert _row(app, committed)["payload"] == {"kind": "test", "n": 0}


def test_two_concurrent_relays_send_every_row_exactly_once(app):
    ids = _enqueue(app, 120)
    sender = RecordingSender(barrier=threading.Barrier(2))
    results = []

    def run():
        results.append(outbox.relay(batch=20, send=sender, connection=app))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(sender.sent) == sorted(ids)
    assert set(sender.sent.values()) == {1}, "a row was sent twice"
    assert sum(r.relayed for r in results) == len(ids)
    assert all(r.relayed > 0 for r in results), "both relays claimed work concurrently"
    assert transaction(outbox.pending, connection=app) == {}
    assert outbox.relay(send=sender, connection=app).relayed == 0


def test_a_failed_send_is_retried_later_and_does_not_block_the_rest(app):
    ids = _enqueue(app, 5)
    sender = RecordingSender(fail_ids={ids[1]})
    first = outbox.relay(batch=100, send=sender, connection=app)
    assert (first.relayed, first.failed) == (4, 1)
    failed = _row(app, ids[1])
    assert failed["relayed_at"] is None
    assert failed["attempts"] == 1
    assert "simulated" in failed["last_error"]
    # It waits out its backoff instead of being hammered on the next run.
    assert outbox.relay(send=RecordingSender(), connection=app).relayed == 0
    assert _row(app, ids[0])["relayed_at"] is not None
    assert outbox.retry_delay(1) == 5 and outbox.retry_delay(30) == outbox.MAX_BACKOFF_SECONDS


def test_a_sender_that_raises_leaves_rows_pending(app):
    ids = _enqueue(app, 3)

    def broken(queue, messages):
        raise ConnectionError("sqs unreachable")

    result = outbox.relay(send=broken, connection=app)
    assert (result.relayed, result.failed) == (0, 3)
    assert all(_row(app, i)["relayed_at"] is None for i in ids)
    assert "sqs unreachable" in _row(app, ids[0])["last_error"]


def test_relay_sends_json_with_the_outbox_id_to_the_real_queue(app, aws_endpoint):
    from ledgerline.aws import clients, resources

    sqs = clients.client("sqs")
    url = resources.queue_url("merchant-webhooks")

    def work(cur):
        outbox_id = outbox.enqueue(cur, "merchant-webhooks", {"event": "invoice.paid", "amount": "10.50"})
        cur.after_commit.clear()  # killed after COMMIT: the sweep must send it
        return outbox_id

    outbox_id = transaction(work, connection=app)
    assert _row(app, outbox_id)["relayed_at"] is None
    assert outbox.relay(connection=app).relayed == 1
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1)
    [message] = [m for m in got["Messages"] if m["MessageAttributes"]["outbox_id"]["StringValue"] == str(outbox_id)]
    assert json.loads(message["Body"]) == {"event": "invoice.paid", "amount": "10.50"}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert _row(app, outbox_id)["relayed_at"] is not None


def test_the_application_role_cannot_edit_or_delete_outbox_rows(app):
    [outbox_id] = _enqueue(app, 1)
    outbox.relay(send=RecordingSender(), connection=app)
    attempts = [
        ("UPDATE outbox SET payload = '{}'::jsonb WHERE id = %s", psycopg2.errors.InsufficientPrivilege),
        ("DELETE FROM outbox WHERE id = %s", psycopg2.errors.InsufficientPrivilege),
        ("UPDATE outbox SET relayed_at = NULL WHERE id = %s", psycopg2.errors.InsufficientPrivilege),
    ]
    for sql, error in attempts:
        with pytest.raises(error):
            transaction(lambda cur, sql=sql: cur.execute(sql, (outbox_id,)), connection=app)
    assert _row(app, outbox_id)["payload"] == {"kind": "test", "n": 0}


def test_only_rows_relayed_long_ago_are_purged(app, module_db):
    old, recent, pending = _enqueue(app, 3)
    outbox.relay(send=RecordingSender(fail_ids={pending}), connection=app)
    owner = db_connection.connect(module_db, autocommit=True)
    with owner.cursor() as cur:  # time passes for the first row only
        cur.execute("ALTER TABLE outbox DISABLE TRIGGER outbox_guard")
        cur.execute("UPDATE outbox SET relayed_at = now() - interval '8 days' WHERE id = %s", (old,))
        cur.execute("ALTER TABLE outbox ENABLE TRIGGER outbox_guard")
    owner.close()

    assert transaction(outbox.purge_relayed, connection=app) == 1

    assert _row(app, old) is None
    assert _row(app, recent)["relayed_at"] is not None and _row(app, pending)["relayed_at"] is None
    for row_id in (recent, pending):  # the database itself keeps them, whatever the caller asks
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            transaction(lambda cur, i=row_id: cur.execute("DELETE FROM outbox WHERE id = %s", (i,)), connection=app)


def test_enqueue_refuses_unknown_queues_and_oversized_payloads(app):
    with pytest.raises(outbox.OutboxError, match="does not send to 'e-mails'"):
        _enqueue(app, 1, queue="e-mails")
    # A real queue the relay holds no send grant for would fail only in AWS: refused here.
    with pytest.raises(outbox.OutboxError, match="grant 'sqs:gateway-webhooks' on the outbox-relay"):
        _enqueue(app, 1, queue="gateway-webhooks")
    with pytest.raises(outbox.OutboxError, match="bytes"):
        transaction(lambda cur: outbox.enqueue(cur, "notifications", {"blob": "x" * 300_000}), connection=app)
    assert transaction(outbox.pending, connection=app) == {}


def test_the_scheduled_handler_relays_pending_rows(database_url, aws_endpoint):
    from functions.jobs import outbox_relay
    from ledgerline.aws import clients, resources

    def routine_insert(cur):  # as a SQL routine writes one: nobody publishes it but the sweep
        cur.execute(
            "INSERT INTO outbox (queue, payload) VALUES ('merchant-webhooks', '{\"event\": \"handler-test\"}') "
            "RETURNING id"
        )
        return cur.fetchone()["id"]

    outbox_id = transaction(routine_insert)
    result = outbox_relay.handler({"id": "evt-1", "detail-type": "Scheduled Event"}, None)
    assert result["relayed"] >= 1
    row = transaction(
        lambda cur: (cur.execute("SELECT relayed_at FROM outbox WHERE id = %s", (outbox_id,)), cur.fetchone())[1]
    )
    assert row["relayed_at"] is not None
    sqs = clients.client("sqs")
    url = resources.queue_url("merchant-webhooks")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1)
    mine = [m for m in got.get("Messages", []) if m["MessageAttributes"]["outbox_id"]["StringValue"] == str(outbox_id)]
    assert len(mine) == 1
    for m in got.get("Messages", []):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_the_purge_job_keeps_rows_for_the_configured_retention(app, module_db, monkeypatch):
    from functions.jobs import outbox_purge
    from ledgerline import config

    ten_days, three_days, an_hour = _enqueue(app, 3)
    outbox.relay(send=RecordingSender(), connection=app)
    owner = db_connection.connect(module_db, autocommit=True)
    with owner.cursor() as cur:
        cur.execute("ALTER TABLE outbox DISABLE TRIGGER outbox_guard")
        for row_id, age in ((ten_days, "10 days"), (three_days, "3 days"), (an_hour, "1 hour")):
            cur.execute("UPDATE outbox SET relayed_at = now() - %s::interval WHERE id = %s", (age, row_id))
        cur.execute("ALTER TABLE outbox ENABLE TRIGGER outbox_guard")
    owner.close()
    monkeypatch.setenv("LEDGERLINE_OUTBOX_RETENTION_DAYS", "2")
    monkeypatch.setenv("LEDGERLINE_APP_DATABASE_URL", db_connection.with_user(module_db, db_connection.APP_ROLE))
    config.settings.cache_clear()
    db_connection.reset_urls()
    try:
        assert outbox_purge.handler({"id": "evt-purge"}, None) == {"purged": 2}
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()
        db_connection.reset_urls()

    assert _row(app, ten_days) is None and _row(app, three_days) is None
    assert _row(app, an_hour) is not None
