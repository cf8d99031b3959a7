"""One delivery attempt: sign the event, POST it to the endpoint's checked address, log
the attempt, and say what the queue should do next.

The attempt number is claimed in its own transaction before the POST (no lock is held
while a merchant's server takes its time), and the outcome is logged in another after
it. A message delivered twice (the outbox and SQS are at-least-once) may POST twice:
merchants deduplicate on the event ``id``, as with Stripe. A crash between the two
transactions loses that attempt's log line, never the delivery: SQS delivers the
message again after its visibility timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledgerline import crypto
from ledgerline.config import settings
from ledgerline.db import Cursor, transaction
from ledgerline.jobs import queue
from ledgerline.jsonutil import dumps
from ledgerline.webhooks import signing, targets
from ledgerline.webhooks.endpoints import SECRET_COLUMN, TABLE
from ledgerline.webhooks.events import QUEUE

# Then the delivery is dead; one receive per attempt, so SQS's maxReceiveCount of the same
# queue is spent too, and the message moves on to the DLQ.
MAX_ATTEMPTS = queue(QUEUE).max_receive_count
TIMEOUT_SECONDS = 5.0  # per connect and per read: a slow merchant must not hold the worker
DEADLINE_SECONDS = 10.0  # the whole POST, however slowly a server drips its answer
ERROR_TEXT_LIMIT = 1000
MAX_BACKOFF_SECONDS = 6 * 3600
USER_AGENT = "Ledgerline-Webhooks/1"


@dataclass(frozen=True)
class Next:
    """What the consumer does with the message: ``done`` (delete it), or leave it to come
    back after ``delay`` seconds (a retry, or, once dead, the way to the DLQ)."""

    done: bool
    delay: int = 0
    outcome: str = "succeeded"  # succeeded | failed | dead | skipped


def backoff(attempt: int) -> int:
    """Seconds before attempt ``attempt + 1``: 30 s, 2 min, 8 min, 32 min … at most 6 h."""
    return int(min(MAX_BACKOFF_SECONDS, 30 * 4 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class _Claim:
    attempt: int
    url: str
    secret: str
    body: bytes


def _claim(cur: Cursor, delivery_id: UUID) -> _Claim | str:
    """Take the next attempt number of a pending delivery, or say why there is none."""
    cur.execute(
        """
        SELECT d.status, d.attempts, w.id AS endpoint_id, w.url, w.secret_ciphertext, w.deleted_at,
               e.id AS event_id, e.type, e.data, e.created_at
          FROM webhook_deliveries d
          JOIN webhook_endpoints w ON w.id = d.endpoint_id
          JOIN webhook_events e ON e.id = d.event_id
         WHERE d.id = %s
           FOR UPDATE OF d
        """,
        (delivery_id,),
    )
    row = cur.fetchone()
    if row is None:
        return "unknown"
    if row["status"] != "pending":
        return str(row["status"])
    if row["deleted_at"] is not None:
        cur.execute("UPDATE webhook_deliveries SET status = 'dead', updated_at = now() WHERE id = %s", (delivery_id,))
        return "endpoint-deleted"
    attempt = int(row["attempts"]) + 1
    cur.execute("UPDATE webhook_deliveries SET attempts = %s, updated_at = now() WHERE id = %s", (attempt, delivery_id))
    secret = crypto.decrypt_field(
        bytes(row["secret_ciphertext"]), table=TABLE, column=SECRET_COLUMN, row_id=row["endpoint_id"]
    )
    event = {
        "id": str(row["event_id"]),
        "type": row["type"],
        "created": int(row["created_at"].timestamp()),
        "data": row["data"],
    }
    return _Claim(attempt, row["url"], secret, dumps(event).encode())


def post(url: str, body: bytes, secret: str, *, deadline: float = DEADLINE_SECONDS) -> tuple[int | None, str | None]:
    """POST a signed body to the URL's checked address: (status, None) or (None, error)."""
    try:
        target = targets.check(url, allow_private=settings().allow_private_webhook_targets)
    except targets.TargetRefused as exc:
        return None, f"refused: {exc}"
    conn = targets.connection(target, TIMEOUT_SECONDS)
    # Per-operation timeouts do not bound a server that sends a byte every few seconds:
    # past the deadline the socket is shut down under the blocked read.
    watchdog = threading.Timer(deadline, _shut, args=(conn,))
    watchdog.start()
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                signing.HEADER: signing.header(secret, body),
            },
        )
        return conn.getresponse().status, None  # the body is not read: only the status counts
    except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, reset, timeout, TLS, garbage
        late = "" if watchdog.is_alive() else f" (over the {deadline:g} s deadline)"
        return None, f"{type(exc).__name__}: {exc}{late}"
    finally:
        watchdog.cancel()
        conn.close()


def _shut(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _record(
    cur: Cursor, delivery_id: UUID, attempt: int, status: int | None, error: str | None, duration_ms: int
) -> str:
    if status is not None and 200 <= status < 300:
        outcome = "succeeded"
    else:
        outcome = "dead" if attempt >= MAX_ATTEMPTS else "failed"
        error = error or f"HTTP {status}"
    cur.execute(
        """
        INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status_code, duration_ms, error, outcome)
        VALUES (%s, %s, %s, %s, %s, %s)
        """,
        (delivery_id, attempt, status, duration_ms, None if error is None else error[:ERROR_TEXT_LIMIT], outcome),
    )
    if outcome != "failed":
        cur.execute(
            "UPDATE webhook_deliveries SET status = %s, updated_at = now() WHERE id = %s AND status = 'pending'",
            (outcome, delivery_id),
        )
    return outcome


def attempt(delivery_id: UUID, *, connection: Any = None) -> Next:
    """One attempt of the delivery ``delivery_id`` (see the module's docstring)."""
    options: dict[str, Any] = {} if connection is None else {"connection": connection}
    claim = transaction(lambda cur: _claim(cur, delivery_id), **options)
    if isinstance(claim, str):
        # Already delivered, or nothing to deliver to: done. Dead: back to the queue at
        # once, so SQS moves the message to the DLQ when its receives run out.
        return Next(done=claim != "dead", outcome="dead" if claim == "dead" else "skipped")
    started = time.monotonic()
    status, error = post(claim.url, claim.body, claim.secret)
    duration_ms = int((time.monotonic() - started) * 1000)
    outcome = transaction(
        lambda cur: _record(cur, delivery_id, claim.attempt, status, error, duration_ms), attempts=3, **options
    )
    if outcome == "succeeded":
        return Next(done=True)
    if outcome == "dead":
        return Next(done=False, delay=0, outcome="dead")
    return Next(done=False, delay=backoff(claim.attempt), outcome="failed")
