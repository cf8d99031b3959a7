"""Idempotency of money-moving requests (DESIGN.md 'Idempotency'): the one piece every
money route runs through (``Endpoint.money``).

In ONE database transaction: claim the caller's key, run the operation, store the
response (a refusal is stored by a second one, after the operation's rollback). Then:

- the same key with the same request replays the stored response; nothing moves again;
- the same key with a different request is refused (422 ``idempotency_key_reused``);
- a duplicate arriving while the first still runs waits on the first's uncommitted claim,
  then replays its response (or, after ``wait_ms``, gets 409 ``idempotency_key_in_progress``);
- a 5xx or a crash rolls the claim back with the money, so a retry runs it again;
- deterministic refusals (400/404/409/422) are stored and replayed: the operation's own
  writes are rolled back first, so the refusal is all that remains;
- keys expire after 24 h (``purge_expired``, the ``idempotency-expiry`` job).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

import psycopg2
import psycopg2.errors

from ledgerline import audit, errors, jsonutil
from ledgerline.audit import Actor
from ledgerline.config import settings
from ledgerline.db import Cursor, transaction

HEADER = "idempotency-key"  # request header, as the Endpoint sees it (lower case)
REPLAYED_HEADER = "Idempotent-Replayed"
STORED_STATUSES = frozenset({400, 404, 409, 422})
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
_TAKEN = "LLIK0"  # idempotency_claim_fresh: the key is taken
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

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


def execute(
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
    one database transaction; or return the stored response of an earlier run.

    ``work(cur)`` returns ``(status, body)``; it runs inside the transaction and must not
    act outside the database (gateways are called after commit, through the outbox). A
    DomainError with a stored status is recorded (after ``on_failure(cur, error)``, e.g.
    a failure audit row) and returned as a problem response; anything else propagates
    and nothing is stored.

    The common case costs two round trips: BEGIN, the claim and the work's first statement
    travel together, and the stored response travels with COMMIT. A claim that finds the
    key taken fails that first trip; the stored response is then read in a transaction of
    its own. A refusal rolls everything back and is stored by a second transaction, which
    claims the key again (or replays whoever got it meanwhile): no savepoint on the common
    path, and the stored outcome is always what the caller is told.
    """
    wait = wait_ms if wait_ms is not None else max(100, settings().statement_timeout_ms - 1000)
    claim = Claim(scope, key, request_hash, wait)
    for _ in range(3):
        refusal: errors.DomainError | None = None
        try:
            return transaction(lambda cur: _first_run(cur, claim, work))
        except errors.IdempotencyKeyInProgress:
            raise  # about the key, not the operation: never stored as its outcome
        except errors.DomainError as err:
            if err.status not in STORED_STATUSES:
                raise
            refusal = err
        except _KeyTaken:
            pass
        settle = partial(_settle, claim=claim, actor=actor, refusal=refusal, on_failure=on_failure)
        try:
            return transaction(settle)
        except _KeyGone:
            continue  # the stored response expired and was purged meanwhile: run it afresh
    raise errors.IdempotencyKeyInProgress("the request with this Idempotency-Key could not be settled; retry it")


@dataclass(frozen=True)
class Claim:
    scope: str
    key: UUID
    request_hash: str
    wait_ms: int


class _KeyTaken(Exception):
    """The key belongs to an earlier, committed run (or one that just committed)."""


class _KeyGone(Exception):
    """The key was free again when its stored response was to be read."""


def _first_run(cur: Cursor, claim: Claim, work: Work) -> Outcome:
    cur.defer(
        "SELECT idempotency_claim_fresh(%s, %s, %s, %s)", (claim.scope, claim.key, claim.request_hash, claim.wait_ms)
    )
    try:
        status, body = work(cur)
        cur.flush()  # a work that sent nothing still needs its claim before the response
    except Exception as exc:
        _raise_if_from_claim(exc)
        raise
    outcome = Outcome(status, jsonutil.dumps(body), JSON)
    _store(cur, claim, outcome)
    return outcome


def _raise_if_from_claim(exc: BaseException) -> None:
    """The claim travels with the work's first statement: tell its failures apart."""
    cause = exc if isinstance(exc, psycopg2.Error) else exc.__cause__
    if not isinstance(cause, psycopg2.Error):
        return
    if cause.pgcode == _TAKEN:
        raise _KeyTaken from None
    context = cause.diag.context or ""
    if isinstance(cause, psycopg2.errors.LockNotAvailable) and "idempotency_claim" in context:
        raise errors.IdempotencyKeyInProgress(
            "a request with this Idempotency-Key is still being processed; retry it in a moment"
        ) from None


def _settle(
    cur: Cursor, claim: Claim, actor: Actor, refusal: errors.DomainError | None, on_failure: FailureHook | None
) -> Outcome:
    """Store a refusal under the key, or replay what an earlier run stored there."""
    try:
        cur.execute(
            "SELECT * FROM idempotency_claim(%s, %s, %s, %s)",
            (claim.scope, claim.key, claim.request_hash, claim.wait_ms),
        )
    except psycopg2.errors.LockNotAvailable:
        raise errors.IdempotencyKeyInProgress(
            "a request with this Idempotency-Key is still being processed; retry it in a moment"
        ) from None
    row = cur.fetchone()
    if not row["claimed"]:
        return _replay(cur, row, claim, actor)
    if refusal is None:
        raise _KeyGone
    if on_failure is not None:
        on_failure(cur, refusal)
    outcome = Outcome(refusal.status, jsonutil.dumps(refusal.problem()), PROBLEM_JSON)
    _store(cur, claim, outcome)
    return outcome


def _store(cur: Cursor, claim: Claim, outcome: Outcome) -> None:
    """The response, written with COMMIT (nothing reads this statement's result)."""
    cur.defer(
        """
        UPDATE idempotency_keys SET status_code = %s, response_body = %s, content_type = %s
         WHERE scope = %s AND key = %s
        """,
        (outcome.status, outcome.body, outcome.content_type, claim.scope, claim.key),
    )


def _replay(cur: Cursor, row: dict[str, Any], claim: Claim, actor: Actor) -> Outcome:
    if row["request_hash"] != claim.request_hash:
        raise errors.IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request; use a new key for a new operation"
        )
    if row["status_code"] is None:  # cannot happen: a committed claim always has its response
        raise errors.IdempotencyKeyInProgress("the request with this Idempotency-Key has not finished; retry it")
    audit.record(
        cur,
        actor,
        "idempotency.replayed",
        "idempotency_key",
        claim.key,
        metadata={"scope": claim.scope, "status": row["status_code"]},
    )
    return Outcome(row["status_code"], row["response_body"], row["content_type"], replayed=True)


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
