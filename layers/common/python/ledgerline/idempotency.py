"""Idempotency of money-moving requests (DESIGN.md 'Idempotency'): the one piece every
money route runs through (``Endpoint.money``).

In ONE database transaction: claim the caller's key, run the operation, store the
response. Then:

- the same key with the same request replays the stored response; nothing moves again;
- the same key with a different request is refused (422 ``idempotency_key_reused``);
- a duplicate arriving while the first still runs waits on the first's uncommitted claim,
  then replays its response (or, after ``wait_ms``, gets 409 ``idempotency_key_in_progress``);
- a 5xx or a crash rolls the claim back with the money, so a retry runs it again;
- deterministic refusals (400/404/409/422) are stored and replayed: the operation's own
  writes are rolled back to a savepoint first, so the refusal is all that remains;
- keys expire after 24 h (``purge_expired``, the ``idempotency-expiry`` job).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg2
import psycopg2.errors

from ledgerline import audit, errors, jsonutil
from ledgerline.audit import Actor
from ledgerline.config import settings
from ledgerline.db import Cursor

HEADER = "idempotency-key"  # request header, as the Endpoint sees it (lower case)
REPLAYED_HEADER = "Idempotent-Replayed"
STORED_STATUSES = frozenset({400, 404, 409, 422})
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
_UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

Work = Callable[[Cursor], tuple[int, Any]]
FailureHook = Callable[[Cursor, errors.DomainError | None], None]


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
    if not _UUID4.match(text):
        raise errors.IdempotencyKeyInvalid(
            "Idempotency-Key must be a UUID v4 such as 3f0c6d2e-8b1a-4c5d-9e7f-0a1b2c3d4e5f"
        )
    return UUID(text)


def fingerprint(method: str, path: str, body: Any, query: str = "") -> str:
    """What makes two requests "the same": method, path, query and the parsed body
    (canonical JSON, so key order and whitespace do not matter)."""
    text = jsonutil.canonical({"method": method.upper(), "path": path, "query": query, "body": body})
    return hashlib.sha256(text.encode()).hexdigest()


def run(
    cur: Cursor,
    *,
    scope: str,
    key: UUID,
    request_hash: str,
    work: Work,
    actor: Actor,
    on_failure: FailureHook | None = None,
    wait_ms: int | None = None,
) -> Outcome:
    """Claim ``key`` for ``scope`` (the caller), run ``work`` and store its response, in
    the caller's transaction; or return the stored response of an earlier run.

    ``work(cur)`` returns ``(status, body)``. A DomainError with a stored status is
    recorded (after ``on_failure(cur, error)``, e.g. a failure audit row) and returned
    as a problem response; anything else propagates and the transaction rolls back.
    """
    wait = wait_ms if wait_ms is not None else max(100, settings().statement_timeout_ms - 1000)
    try:
        cur.execute("SELECT * FROM idempotency_claim(%s, %s, %s, %s)", (scope, key, request_hash, wait))
    except psycopg2.errors.LockNotAvailable:
        raise errors.IdempotencyKeyInProgress(
            "a request with this Idempotency-Key is still being processed; retry it in a moment"
        ) from None
    claim = cur.fetchone()
    if not claim["claimed"]:
        return _replay(cur, claim, scope=scope, key=key, request_hash=request_hash, actor=actor)

    cur.execute("SAVEPOINT idempotent_work")
    try:
        status, body = work(cur)
        outcome = Outcome(status, jsonutil.dumps(body), JSON)
    except errors.DomainError as err:
        if err.status not in STORED_STATUSES:
            raise
        cur.execute("ROLLBACK TO SAVEPOINT idempotent_work")
        if on_failure is not None:
            on_failure(cur, err)
        outcome = Outcome(err.status, jsonutil.dumps(err.problem()), PROBLEM_JSON)
    cur.execute(
        """
        UPDATE idempotency_keys SET status_code = %s, response_body = %s, content_type = %s
         WHERE scope = %s AND key = %s
        """,
        (outcome.status, outcome.body, outcome.content_type, scope, key),
    )
    return outcome


def _replay(cur: Cursor, claim: dict[str, Any], *, scope: str, key: UUID, request_hash: str, actor: Actor) -> Outcome:
    if claim["request_hash"] != request_hash:
        raise errors.IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request; use a new key for a new operation"
        )
    if claim["status_code"] is None:  # cannot happen: a committed claim always has its response
        raise errors.IdempotencyKeyInProgress("the request with this Idempotency-Key has not finished; retry it")
    audit.record(
        cur,
        actor,
        "idempotency.replayed",
        "idempotency_key",
        key,
        metadata={"scope": scope, "status": claim["status_code"]},
    )
    return Outcome(claim["status_code"], claim["response_body"], claim["content_type"], replayed=True)


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
