"""The transactional outbox: domain events → same-transaction row → relay → SQS.

``enqueue`` runs inside the caller's transaction: the event exists exactly when the
change that caused it committed (no e-mail about a password reset that rolled back, no
lost e-mail about one that committed). ``relay`` later claims pending rows with
``FOR UPDATE`` (concurrent relays never claim the same row), sends them, and
marks what the queue accepted, in one transaction per batch.

Delivery is at-least-once: a crash between the send and the commit re-sends the batch.
Every message carries its row id in the ``outbox_id`` attribute so consumers can tell a
duplicate.

Latency: ``enqueue`` also asks the transaction to ``publish`` its rows right after COMMIT
(``Cursor.after_commit``), so an event leaves within the request instead of waiting for
the next run of the one-minute relay. That publish is best effort: the relay's schedule
is the sweep that sends whatever a failed, skipped or killed publish left behind. Both
claim rows with ``FOR UPDATE SKIP LOCKED`` and only rows still unrelayed, so a sweep
racing a publish never sends a row twice (a crash after a send still can: at-least-once).
Rows inserted by SQL (``INSERT INTO outbox`` in a routine) are published by whoever
calls ``publish_after_commit`` with their ids, else by the sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledgerline.batches import drain
from ledgerline.db import Cursor, transaction
from ledgerline.jsonutil import dumps
from ledgerline.observability import logger

MAX_PAYLOAD_BYTES = 256 * 1024  # what one SQS message may carry
MAX_BACKOFF_SECONDS = 3600
ERROR_TEXT_LIMIT = 1000

# (queue, [Outgoing]) → BatchResult; ``ledgerline.aws.queues.send_batch`` in production.
Sender = Callable[[str, Sequence[Any]], Any]


class OutboxError(ValueError):
    pass


@dataclass
class RelayResult:
    relayed: int = 0
    failed: int = 0
    batches: int = 0
    failures: dict[int, str] = field(default_factory=dict)  # outbox id → reason (last batch's)


def enqueue(cur: Cursor, queue: str, payload: Mapping[str, Any]) -> int:
    """Add an event for the QUEUES row ``queue`` to the caller's transaction; return its id."""
    if queue not in relayed_queues():
        raise OutboxError(
            f"the outbox relay does not send to {queue!r}: a queue needs its QUEUES row and the"
            f" grant 'sqs:{queue}' on the outbox-relay schedule (ledgerline/jobs.py)"
        )
    if not isinstance(payload, Mapping):
        raise OutboxError("an outbox payload is a JSON object (a mapping)")
    text = dumps(dict(payload))
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise OutboxError(
            f"outbox payload is {len(text.encode())} bytes; a queue message allows {MAX_PAYLOAD_BYTES}: "
            "send a reference to the data instead"
        )
    cur.execute("INSERT INTO outbox (queue, payload) VALUES (%s, %s::jsonb) RETURNING id", (queue, text))
    outbox_id = int(cur.fetchone()["id"])
    publish_after_commit(cur, [outbox_id])
    return outbox_id


class _Publication:
    """The after-commit hook of one transaction: publish the rows it wrote, on its own
    connection (a ``transaction`` may run on any connection factory)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.ids: list[int] = []

    def __call__(self) -> None:
        from ledgerline.config import settings

        cfg = settings()
        if cfg.local and not cfg.aws_endpoint_url:
            return  # a laptop without the AWS stand-in has no queue to send to: the sweep will
        result = publish(self.ids, connection=lambda: self.conn)
        if result.failed:
            logger.info("outbox publish left rows to the sweep", extra={"failed": result.failed})


def publish_after_commit(cur: Cursor, ids: Sequence[int]) -> None:
    """Publish the outbox rows ``ids`` once the cursor's transaction commits (nothing is
    sent if it rolls back). A cursor outside ``transaction`` has no hooks: the sweep sends."""
    hooks = getattr(cur, "after_commit", None)
    if hooks is None or not ids:
        return
    for hook in hooks:
        if isinstance(hook, _Publication):
            hook.ids.extend(ids)
            return
    publication = _Publication(cur.connection)
    publication.ids.extend(ids)
    hooks.append(publication)


def publish(
    ids: Sequence[int], *, send: Sender | None = None, connection: Callable[[], Any] | None = None
) -> RelayResult:
    """Send the rows ``ids`` now, those still pending and not claimed by a relay (one
    transaction). What fails waits for its backoff and the sweep, as in ``relay``."""
    if send is None:
        from ledgerline.aws.queues import send_batch

        send = send_batch
    sender = send
    options: dict[str, Any] = {"attempts": 1}  # it sends outside the database: never twice
    if connection is not None:
        options["connection"] = connection
    unique = sorted(set(ids))
    return transaction(lambda cur: relay_batch(cur, sender, len(unique), ids=unique), **options)


def publish_fresh(
    *,
    within_seconds: float = 30.0,
    limit: int = 100,
    send: Sender | None = None,
    connection: Callable[[], Any] | None = None,
) -> RelayResult:
    """Publish the pending rows written in the last ``within_seconds``: for work whose rows
    SQL inserted with no Python transaction around it (a money route's one ``money_call``
    statement), called right after it returns. It may send another request's fresh rows
    too: a small, early sweep, which ``SKIP LOCKED`` keeps from sending any row twice."""
    if send is None:
        from ledgerline.aws.queues import send_batch

        send = send_batch
    sender = send
    options: dict[str, Any] = {"attempts": 1}
    if connection is not None:
        options["connection"] = connection
    return transaction(lambda cur: relay_batch(cur, sender, limit, fresh_seconds=within_seconds), **options)


def relayed_queues() -> frozenset[str]:
    """The queues the relay may send to in AWS: those its schedule holds a send grant for
    (the grant is what its role is built from; a row without it would fail only there)."""
    from ledgerline.jobs import QUEUES, schedule

    granted = {g.removeprefix("sqs:") for g in schedule("outbox-relay").grants if g.startswith("sqs:")}
    return frozenset(q.name for q in QUEUES if q.name in granted)


def relay_batch(
    cur: Cursor,
    send: Sender,
    batch: int = 100,
    *,
    ids: Sequence[int] | None = None,
    fresh_seconds: float | None = None,
) -> RelayResult:
    """Claim up to ``batch`` due rows (of ``ids``, or written in the last ``fresh_seconds``,
    if given), send them, and record the outcome (one transaction). Rows another
    transaction holds are skipped, not awaited."""
    from ledgerline.aws.queues import Outgoing

    cur.execute(
        """
        SELECT id, queue, payload, attempts FROM outbox
         WHERE relayed_at IS NULL AND next_attempt_at <= now()
           AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
           AND (%(fresh)s::float8 IS NULL OR created_at >= clock_timestamp() - make_interval(secs => %(fresh)s))
         ORDER BY next_attempt_at, id
         LIMIT %(batch)s
         FOR UPDATE SKIP LOCKED
        """,
        {"ids": None if ids is None else list(ids), "fresh": fresh_seconds, "batch": batch},
    )
    rows = cur.fetchall()
    result = RelayResult(batches=1 if rows else 0)
    if not rows:
        return result
    by_queue: dict[str, list[Any]] = {}
    attempts = {}
    for row in rows:
        attempts[row["id"]] = row["attempts"]
        message = Outgoing(str(row["id"]), row["payload"], {"outbox_id": str(row["id"])})
        by_queue.setdefault(row["queue"], []).append(message)
    sent: list[int] = []
    failed: dict[int, str] = {}
    for queue, messages in by_queue.items():
        try:
            outcome = send(queue, messages)
        except Exception as exc:  # a sender that raises fails its whole queue's share
            failed.update({int(m.id): f"{type(exc).__name__}: {exc}" for m in messages})
            continue
        sent.extend(int(i) for i in outcome.sent)
        failed.update({int(i): reason for i, reason in outcome.failed.items()})
        unaccounted = {int(m.id) for m in messages} - {int(i) for i in outcome.sent} - set(failed)
        failed.update(dict.fromkeys(unaccounted, "the sender reported neither success nor failure"))
    if sent:
        cur.execute(
            "UPDATE outbox SET relayed_at = clock_timestamp(), attempts = attempts + 1 WHERE id = ANY(%s)",
            (sent,),
        )
    if failed:
        ids = list(failed)
        cur.execute(
            """
            UPDATE outbox o
               SET attempts = o.attempts + 1,
                   last_error = f.reason,
                   next_attempt_at = now() + make_interval(secs => f.delay)
              FROM unnest(%s::bigint[], %s::text[], %s::float8[]) AS f(id, reason, delay)
             WHERE o.id = f.id
            """,
            (ids, [failed[i][:ERROR_TEXT_LIMIT] for i in ids], [retry_delay(attempts[i] + 1) for i in ids]),
        )
        logger.warning(
            "outbox rows not relayed", extra={"count": len(failed), "first_error": next(iter(failed.values()))}
        )
    result.relayed = len(sent)
    result.failed = len(failed)
    result.failures = failed
    return result


def retry_delay(attempts: int) -> float:
    """Seconds before a row that failed ``attempts`` times is tried again (5 s doubling, ≤ 1 h)."""
    return float(min(MAX_BACKOFF_SECONDS, 5 * 2 ** max(0, attempts - 1)))


def relay(
    batch: int = 100,
    *,
    send: Sender | None = None,
    time_budget: float = 45.0,
    connection: Callable[[], Any] | None = None,
) -> RelayResult:
    """Relay every due row, batch after batch (``batches.drain``), until none is left or
    the budget is spent. A batch is sent inside its transaction (its rows stay claimed,
    so concurrent relays never send the same row) and never retried there: a batch that
    fails after sending is sent again by a later run (at-least-once; ``outbox_id``)."""
    if send is None:
        from ledgerline.aws.queues import send_batch

        send = send_batch
    total = RelayResult()

    def step(cur: Cursor) -> int:
        result = relay_batch(cur, send, batch)
        total.relayed += result.relayed
        total.failed += result.failed
        total.batches += result.batches
        total.failures.update(result.failures)
        # A short batch means nothing more is due (failed rows now wait for their backoff).
        return result.relayed + result.failed

    drain(step, batch, time_budget=time_budget, attempts=1, connection=connection)
    return total


def purge_relayed(cur: Cursor, *, keep_days: int | None = None, limit: int = 10_000) -> int:
    """Delete up to ``limit`` rows relayed more than ``keep_days`` ago (default: the
    configured retention); return how many. It runs as the owner role, through the
    SECURITY DEFINER ``outbox_purge_relayed``: the application role cannot delete outbox
    rows, and the database keeps pending rows and rows relayed less than a day ago."""
    if keep_days is None:
        from ledgerline.config import settings

        keep_days = settings().outbox_retention_days
    cur.execute("SELECT outbox_purge_relayed(p_keep_days => %s, p_limit => %s) AS n", (max(1, keep_days), limit))
    return int(cur.fetchone()["n"])


def pending(cur: Cursor) -> dict[str, int]:
    """Rows not yet relayed, by queue (an operator's view of the backlog)."""
    cur.execute("SELECT queue, count(*) AS n FROM outbox WHERE relayed_at IS NULL GROUP BY queue")
    return {r["queue"]: int(r["n"]) for r in cur.fetchall()}
