"""Idempotency of money-moving requests (docs/design.md 'Idempotency'): every money route runs
through ``call``, ONE statement (``money_call``, ``db/routines/money_call.sql``) that admits the caller,
claims the caller's key, runs the operation, writes its audit row and stores and returns
its response. In autocommit that is one round trip and one transaction. Then:

- the same key with the same request replays the stored response; nothing moves again;
- the same key with a different request is refused (422 ``idempotency_key_reused``);
- a duplicate arriving while the first still runs waits on the first's uncommitted claim,
  then replays its response (or, after ``wait_ms``, gets 409 ``idempotency_key_in_progress``);
- a 5xx or a crash rolls the claim back with the money, so a retry runs it again;
- refusals (404/409/422: insufficient funds, frozen, a bad amount...) are answered by the
  operation itself, stored and replayed like any response: nothing was written before them;
- keys expire after 24 h (``purge_expired``, the ``idempotency-expiry`` job).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg2
import psycopg2.errors
import psycopg2.extras

from ledgerline import errors, jsonutil
from ledgerline.config import settings
from ledgerline.db import Cursor, transaction

if TYPE_CHECKING:
    from ledgerline.auth.admission import Admission

HEADER = "idempotency-key"  # request header, as the Endpoint sees it (lower case)
REPLAYED_HEADER = "Idempotent-Replayed"
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Outcome:
    """A response as stored: status, exact body text, content type; and whether replayed."""

    status: int
    body: str
    content_type: str
    replayed: bool = False


def parse_key(value: str | None) -> UUID:
    """The Idempotency-Key header's value, or the 400 that says what to send."""
    if value is None or not value.strip():
        raise errors.IdempotencyKeyRequired(
            "send an Idempotency-Key header with a new UUID v4 for each operation, and the same one when retrying it"
        )
    text = value.strip().lower()
    if not _UUID4.fullmatch(text):
        raise errors.IdempotencyKeyInvalid(
            "Idempotency-Key must be a UUID v4 such as 3f0c6d2e-8b1a-4c5d-9e7f-0a1b2c3d4e5f"
        )
    return UUID(text)


def fingerprint(method: str, path: str, body: Any, query: str = "") -> str:
    """What makes two requests "the same": method, path, query and the parsed body
    (canonical JSON, so key order and whitespace do not matter)."""
    text = jsonutil.canonical({"method": method.upper(), "path": path, "query": query, "body": body})
    return hashlib.sha256(text.encode()).hexdigest()


def call(
    admission: Admission,
    *,
    key: UUID,
    request_hash: str,
    operation: str,
    args: dict[str, Any],
    wait_ms: int | None = None,
) -> Outcome:
    """Run one money request (see the module's docstring): its response, stored or replayed;
    a refused admission is raised (401 counted against the IP, 403, 429)."""
    from ledgerline.auth import admission as admissions

    wait = wait_ms if wait_ms is not None else max(100, settings().statement_timeout_ms - 1000)

    def run(cur: Cursor) -> dict[str, Any]:
        cur.execute(
            """
            SELECT * FROM money_call(
              p_claims => %(claims)s, p_policy => %(policy)s, p_checks => %(checks)s, p_actor => %(actor)s,
              p_key => %(key)s, p_request_hash => %(hash)s, p_wait_ms => %(wait)s, p_op => %(op)s, p_args => %(args)s)
            """,
            {
                **admission.params(),
                "key": key,
                "hash": request_hash,
                "wait": wait,
                "op": operation,
                "args": psycopg2.extras.Json(args, dumps=jsonutil.dumps),
            },
        )
        return dict(cur.fetchone())

    try:
        row = transaction(run, single_statement=True)
    except psycopg2.errors.LockNotAvailable:
        raise errors.IdempotencyKeyInProgress(
            "a request with this Idempotency-Key is still being processed; retry it in a moment"
        ) from None
    outcome = row["outcome"]
    if outcome in ("unauthorized", "forbidden", "rate_limited"):
        problem = jsonutil.loads(row["body"])
        admissions.admitted(admission, {**row, "detail": problem["detail"]}, (admission.actor or {}).get("ip"))
    return Outcome(row["status"], row["body"], row["content_type"], replayed=outcome == "replayed")


def purge_expired(cur: Cursor, *, limit: int = 10_000) -> int:
    """Delete up to ``limit`` keys past their 24 h; return how many."""
    cur.execute(
        """
        DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
          SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT %s FOR UPDATE SKIP LOCKED))
        """,
        (limit,),
    )
    return cur.rowcount
