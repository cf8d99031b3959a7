"""The unit of work: one commit per operation, retried whole on transient failures.

Retried: serialization failures (40001), deadlocks (40P01) and a connection lost before
COMMIT was sent. Never retried: anything once COMMIT was sent (the outcome is unknown, and
a retry could move money twice; clients retry with the same Idempotency-Key instead).
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

Cursor = Any  # psycopg2 RealDictCursor; domain code only calls execute/fetch*


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
) -> T:
    """Run ``work(cursor)`` in one transaction and commit once; retry it whole when safe.

    ``work`` must only touch the database through the cursor it is given (it may run more
    than once). Domain errors raised by ``work`` roll back and propagate unchanged.
    """
    for attempt in range(attempts):
        conn = connection()
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                result = work(cur)
        except BaseException as exc:
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
        try:
            conn.commit()
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            discard_connection()
            if exc.pgcode in RETRYABLE_SQLSTATES and attempt + 1 < attempts:
                # The server refused the commit (e.g. a deferred check found a
                # serialization conflict): nothing was committed, so retrying is safe.
                sleep(backoff(attempt))
                continue
            raise CommitOutcomeUnknown("connection lost during COMMIT") from exc
        except psycopg2.Error as exc:
            _rollback_quietly(conn)
            if exc.pgcode in RETRYABLE_SQLSTATES and attempt + 1 < attempts:
                sleep(backoff(attempt))
                continue
            raise
        return result
    raise AssertionError("unreachable: the last attempt either returns or raises")


def _rollback_quietly(conn: Any) -> None:
    if conn.closed:
        return
    try:
        conn.rollback()
    except psycopg2.Error:
        discard_connection()


def _reason(exc: BaseException) -> str:
    return getattr(exc, "pgcode", None) or type(exc).__name__
