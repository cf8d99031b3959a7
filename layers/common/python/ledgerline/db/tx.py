"""The unit of work: one commit per operation, retried whole on transient failures.

Retried: serialization failures (40001), deadlocks (40P01) and a connection lost before
COMMIT was sent. Never retried: anything once COMMIT was sent (the outcome is unknown, and
a retry could move money twice; clients retry with the same Idempotency-Key instead).

Round trips are the cost of a short transaction (README "Performance"): the connection stays in
autocommit mode and ``transaction`` sends BEGIN with the work's first statement and COMMIT
with whatever the work deferred to the end (``DeferringCursor.defer``), so a money
operation of one function call costs two round trips, not four to six.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg2
import psycopg2.errorcodes
import psycopg2.extras

from ledgerline.db.connection import discard_connection, get_connection

logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_SQLSTATES = frozenset({psycopg2.errorcodes.SERIALIZATION_FAILURE, psycopg2.errorcodes.DEADLOCK_DETECTED})
MAX_ATTEMPTS = 6
BASE_DELAY = 0.005
MAX_DELAY = 0.25


class DeferringCursor(psycopg2.extras.RealDictCursor):
    """A dict-row cursor that holds back statements whose results nobody reads (BEGIN,
    a claim that raises when it fails, a final UPDATE) and sends them in one query string
    with the next statement. The server runs them in order and stops at the first error,
    so the caller sees exactly what separate round trips would have shown."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deferred: list[bytes] = []
        self.statements_left: int | None = None  # a limit, for single-statement work
        # Run once this transaction has committed (never after a rollback or a retried
        # attempt): what must follow a commit, e.g. publishing its outbox rows.
        self.after_commit: list[Callable[[], None]] = []

    def defer(self, query: str, params: Any = None) -> None:
        self.deferred.append(self.mogrify(query, params))

    def execute(self, query: Any, vars: Any = None) -> None:
        if self.statements_left is not None:
            if self.statements_left == 0:
                raise RuntimeError("single-statement work sent a second statement; use a transaction")
            self.statements_left -= 1
        if not self.deferred:
            return super().execute(query, vars)
        text = b";\n".join([*self.deferred, self.mogrify(query, vars)])
        self.deferred.clear()
        return super().execute(text)

    def executemany(self, query: Any, vars_list: Any) -> None:
        self.flush()  # executemany bypasses execute(): send what waits first
        return super().executemany(query, vars_list)

    def flush(self) -> None:
        """Send the deferred statements now (when what follows needs their effect)."""
        if self.deferred:
            text = b";\n".join(self.deferred)
            self.deferred.clear()
            super().execute(text)


# What domain code is handed: it only calls execute, fetch*, rowcount, defer and flush.
Cursor = DeferringCursor


class CommitOutcomeUnknown(Exception):
    """The connection broke while COMMIT was in flight: it may or may not have committed."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, psycopg2.Error) and exc.pgcode in RETRYABLE_SQLSTATES:
        return True
    # A lost connection surfaces as OperationalError/InterfaceError without a SQLSTATE.
    return isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and exc.pgcode is None


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff (AWS architecture blog), bounded."""
    return random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2**attempt))  # noqa: S311 - jitter, not crypto


def transaction(
    work: Callable[[Cursor], T],
    *,
    connection: Callable[[], Any] = get_connection,
    attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    single_statement: bool = False,
    read_only: bool = False,
) -> T:
    """Run ``work(cursor)`` in one transaction and commit once; retry it whole when safe.

    ``work`` must only touch the database through the cursor it is given (it may run more
    than once). Domain errors raised by ``work`` roll back and propagate unchanged.
    ``single_statement``: the work sends one statement, which is a transaction by itself:
    no BEGIN or COMMIT, one round trip (a second statement is a bug and raises). A lost
    connection is retried even though the statement may have run: only for reads and
    idempotent writes. ``read_only``: BEGIN READ ONLY (a write is refused by the server).
    """
    begin = b"BEGIN READ ONLY" if read_only else b"BEGIN"
    for attempt in range(attempts):
        conn = connection()
        if not conn.autocommit:
            conn.autocommit = True  # BEGIN and COMMIT are sent here, with other statements
        committing = False
        try:
            with conn.cursor(cursor_factory=DeferringCursor) as cur:
                if single_statement:
                    cur.statements_left = 1
                    result = work(cur)
                    if cur.deferred:  # nothing would send them: a bug in the work
                        raise RuntimeError("single-statement work deferred a statement; use a transaction")
                    return result
                cur.defer(begin.decode())
                result = work(cur)
                if cur.deferred == [begin]:
                    return result  # the work sent nothing: no transaction to end
                committing = True
                cur.execute("COMMIT")  # with what the work deferred to the end
                hooks = list(cur.after_commit)
        except BaseException as exc:
            if committing and conn.closed:
                # COMMIT went out and the connection died: it may or may not have committed.
                discard_connection()
                raise CommitOutcomeUnknown("connection lost during COMMIT") from exc
            # Otherwise the server answered: whatever failed (the work, a deferred check at
            # COMMIT), nothing was committed, so a retry is safe when the failure is transient.
            _rollback_quietly(conn)
            if _retryable(exc) and attempt + 1 < attempts:
                if conn.closed:
                    discard_connection()
                logger.info("transaction retry", extra={"attempt": attempt + 1, "reason": _reason(exc)})
                sleep(backoff(attempt))
                continue
            if conn.closed:
                discard_connection()
            raise
        _run_after_commit(hooks)
        return result
    raise AssertionError("unreachable: the last attempt either returns or raises")


def _run_after_commit(hooks: list[Callable[[], None]]) -> None:
    """Best effort: the work has committed whatever a hook does, so a hook's failure is
    logged, never raised (a hook must have a fallback, as the outbox has its sweep)."""
    for hook in hooks:
        try:
            hook()
        except Exception:
            logger.exception("after-commit hook failed", extra={"hook": getattr(hook, "__qualname__", repr(hook))})


def _rollback_quietly(conn: Any) -> None:
    """End whatever transaction is open (after an error, the server keeps it, aborted)."""
    if conn.closed:
        return
    if conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        return
    try:
        with conn.cursor() as cur:
            cur.execute("ROLLBACK")
    except psycopg2.Error:
        discard_connection()


def _reason(exc: BaseException) -> str:
    return getattr(exc, "pgcode", None) or type(exc).__name__
