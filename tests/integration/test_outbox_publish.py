"""Outbox latency: rows are published right after their transaction commits; the relay's
schedule is the sweep that sends what a failed or killed publish left behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter

import pytest

from ledgerline import outbox
from ledgerline.db import connection as db_connection
from ledgerline.db.tx import transaction

QUEUE = "merchant-webhooks"


@pytest.fixture(scope="module")
def own_queue(aws_endpoint):
    """A real (moto) queue of this module's own, standing in for the stack's: other tests
    publish to the stack's queue too, and a message they received but did not delete comes
    back later (visibility timeout) into whatever this module counts."""
    from ledgerline.aws import clients, resources

    url = clients.client("sqs").create_queue(QueueName=f"outbox-publish-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    saved = os.environ.get(resources.queue_env_var(QUEUE))
    os.environ[resources.queue_env_var(QUEUE)] = url
    yield url
    if saved is None:
        os.environ.pop(resources.queue_env_var(QUEUE), None)
    else:
        os.environ[resources.queue_env_var(QUEUE)] = saved


@pytest.fixture
def queue(own_queue):
    """This module's (moto) queue, emptied; ``drain()`` → Counter of outbox ids received."""
    from ledgerline.aws import clients

    sqs = clients.client("sqs")
    url = own_queue

    def drain():
        seen = Counter()
        while True:
            got = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
            )
            messages = got.get("Messages", [])
            if not messages:
                return seen
            for m in messages:
                seen[int(m["MessageAttributes"]["outbox_id"]["StringValue"])] += 1
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    drain()  # what earlier tests left (PurgeQueue allows one call a minute)
    return drain


def _relayed_at(module_app, outbox_id):
    def read(cur):
        cur.execute("SELECT relayed_at FROM outbox WHERE id = %s", (outbox_id,))
        return cur.fetchone()["relayed_at"]

    return transaction(read, connection=module_app)


def test_a_row_is_published_as_soon_as_its_transaction_commits(module_app, queue):
    outbox_id = transaction(lambda cur: outbox.enqueue(cur, QUEUE, {"delivery_id": "now"}), connection=module_app)

    # No relay ran: the commit published it.
    assert _relayed_at(module_app, outbox_id) is not None
    assert queue() == Counter({outbox_id: 1})
    assert outbox.relay(connection=module_app).relayed == 0


def test_a_transaction_that_rolls_back_publishes_nothing(module_app, queue):
    class Boom(Exception):
        pass

    def work(cur):
        outbox.enqueue(cur, QUEUE, {"delivery_id": "never"})
        raise Boom

    with pytest.raises(Boom):
        transaction(work, connection=module_app)
    assert queue() == Counter()
    assert transaction(outbox.pending, connection=module_app) == {}


def test_a_publish_that_fails_leaves_the_row_to_the_sweep(module_app, queue, module_db):
    from ledgerline.aws.queues import BatchResult

    def unreachable(queue_name, messages):
        return BatchResult(failed={m.id: "ServiceUnavailable: simulated" for m in messages})

    def work(cur):
        ids = [outbox.enqueue(cur, QUEUE, {"n": i}) for i in range(3)]
        cur.after_commit.clear()  # published below by hand, with a failing sender
        return ids

    ids = transaction(work, connection=module_app)
    result = outbox.publish(ids, send=unreachable, connection=module_app)
    assert (result.relayed, result.failed) == (0, 3)
    assert all(_relayed_at(module_app, i) is None for i in ids)

    # The sweep runs once the failed rows' short backoff has passed.
    owner = db_connection.connect(module_db, autocommit=True)
    with owner.cursor() as cur:
        cur.execute("UPDATE outbox SET next_attempt_at = now() WHERE id = ANY(%s)", (ids,))
    owner.close()
    assert outbox.relay(connection=module_app).relayed == 3
    assert queue() == Counter(dict.fromkeys(ids, 1))


class _Blackhole:
    """An 'SQS endpoint' that accepts connections and never answers: a publish sent to
    it hangs, as a process does in the instant before it is killed."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted = threading.Event()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


_CHILD = textwrap.dedent(
    """
    import sys
    from ledgerline import outbox
    from ledgerline.db import transaction

    marker = sys.argv[1]
    transaction(lambda cur: outbox.enqueue(cur, "merchant-webhooks", {"marker": marker}))
    print("returned", flush=True)  # never reached: the publish hangs, then the process is killed
    """
)


def test_killing_the_process_between_commit_and_publish_loses_no_event(module_app, queue, module_db):
    hole = _Blackhole()
    marker = str(uuid.uuid4())
    env = {
        **os.environ,
        "DATABASE_URL": module_db,
        "AWS_ENDPOINT_URL": hole.url,
        "AWS_ENDPOINT_URL_SQS": hole.url,
        "LEDGERLINE_ENV": "test",
    }
    env = {k: v for k, v in env.items() if not k.startswith("LEDGERLINE_QUEUE_")}
    env.pop("LEDGERLINE_APP_DATABASE_URL", None)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, marker], env=env, stdout=subprocess.PIPE)
    try:
        # The row has committed and the child is inside its publish (talking to "SQS").
        assert hole.accepted.wait(30), "the child never tried to publish"

        def committed(cur):
            cur.execute("SELECT id, relayed_at FROM outbox WHERE payload->>'marker' = %s", (marker,))
            return cur.fetchone()

        row = transaction(committed, connection=module_app)
        assert row is not None and row["relayed_at"] is None
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        hole.close()
    assert child.stdout.read() == b""

    # The sweep finds the row (its claim died with the process) and sends it, once.
    deadline = time.monotonic() + 10
    relayed = 0
    while not relayed and time.monotonic() < deadline:
        relayed = outbox.relay(connection=module_app).relayed
        time.sleep(0.05)
    assert relayed == 1
    assert queue() == Counter({row["id"]: 1})
    assert _relayed_at(module_app, row["id"]) is not None


def test_sweeps_racing_publishes_send_every_row_exactly_once(module_app, queue):
    stop = threading.Event()
    ids: list[int] = []
    lock = threading.Lock()
    sweeps = []

    def writer(k):
        for i in range(15):
            new = transaction(
                lambda cur, i=i: [outbox.enqueue(cur, QUEUE, {"w": k, "i": i, "j": j}) for j in range(3)],
                connection=module_app,
            )
            with lock:
                ids.extend(new)

    def sweeper():
        while not stop.is_set():
            sweeps.append(outbox.relay(batch=5, connection=module_app).relayed)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    sweeping = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in sweeping + threads:
        t.start()
    for t in threads:
        t.join(60)
    stop.set()
    for t in sweeping:
        t.join(60)
    outbox.relay(connection=module_app)  # whatever neither sent (none expected)

    seen = queue()
    assert len(ids) == 4 * 15 * 3
    assert set(seen) == set(ids)
    assert set(seen.values()) == {1}, f"sent twice: {[i for i, n in seen.items() if n > 1]}"
    assert transaction(outbox.pending, connection=module_app) == {}


def test_message_body_is_the_payload(module_app, queue):
    from ledgerline.aws import clients, resources

    sqs = clients.client("sqs")
    url = resources.queue_url(QUEUE)
    outbox_id = transaction(
        lambda cur: outbox.enqueue(cur, QUEUE, {"delivery_id": "d-1", "n": 2}), connection=module_app
    )
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1)
    [message] = got["Messages"]
    assert message["MessageAttributes"]["outbox_id"]["StringValue"] == str(outbox_id)
    assert json.loads(message["Body"]) == {"delivery_id": "d-1", "n": 2}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_a_retried_transaction_publishes_only_what_its_committed_attempt_wrote(module_app, queue):
    attempts = []

    def work(cur):
        outbox_id = outbox.enqueue(cur, QUEUE, {"attempt": len(attempts)})
        attempts.append(outbox_id)
        if len(attempts) == 1:  # a serialization failure: the whole work runs again
            cur.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
        return outbox_id

    committed = transaction(work, connection=module_app)

    assert len(attempts) == 2 and committed == attempts[1]
    assert queue() == Counter({committed: 1})
    assert _relayed_at(module_app, committed) is not None


def test_rows_a_single_sql_statement_wrote_are_published_fresh(module_app, queue, module_db):
    def routine(cur):  # what money_call does: INSERT INTO outbox inside one statement
        cur.execute(
            "INSERT INTO outbox (queue, payload) VALUES (%s, %s), (%s, %s) RETURNING id",
            (QUEUE, {"from": "sql"}, QUEUE, {"from": "sql"}),
        )
        return [r["id"] for r in cur.fetchall()]

    stale = transaction(routine, connection=module_app)
    owner = db_connection.connect(module_db, autocommit=True)
    with owner.cursor() as cur:  # written long ago: the sweep's, not a fresh publish's
        cur.execute("ALTER TABLE outbox DISABLE TRIGGER outbox_guard")
        cur.execute("UPDATE outbox SET created_at = now() - interval '1 hour' WHERE id = ANY(%s)", (stale,))
        cur.execute("ALTER TABLE outbox ENABLE TRIGGER outbox_guard")
    owner.close()
    fresh = transaction(routine, connection=module_app)

    result = outbox.publish_fresh(connection=module_app)

    assert result.relayed == 2
    assert queue() == Counter(dict.fromkeys(fresh, 1))
    assert all(_relayed_at(module_app, i) is None for i in stale)
    assert outbox.relay(connection=module_app).relayed == 2
    assert queue() == Counter(dict.fromkeys(stale, 1))
