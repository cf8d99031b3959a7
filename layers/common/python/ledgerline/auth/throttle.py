"""Login throttling and lockout, per login name (known or not, so nothing is revealed
about which accounts exist).

The first ``FREE_FAILURES`` consecutive failures cost nothing; each further one makes
the next attempt wait 1, 2, 4 ... up to ``MAX_DELAY`` seconds (429); ``LOCK_AFTER``
consecutive failures lock the login for ``LOCK_SECONDS`` (423). The lock cannot hold a
victim out forever: it ends by itself and forgets the failures, a password reset (proof
of the mailbox) lifts it at once, and sessions already open keep working.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ledgerline import errors

if TYPE_CHECKING:
    from ledgerline.db import Cursor

FREE_FAILURES = 3
MAX_DELAY = 60
LOCK_AFTER = 10
LOCK_SECONDS = 30 * 60


def login_subject(email: str) -> bytes:
    """The throttle's key for a normalised login name (its SHA-256)."""
    return hashlib.sha256(email.strip().lower().encode()).digest()


@dataclass(frozen=True)
class Gate:
    failures: int
    locked_until: datetime | None
    wait_seconds: int  # >0: a progressive delay is still running


def delay_after(failures: int) -> int:
    """Seconds to wait before the next attempt after ``failures`` consecutive failures."""
    if failures < FREE_FAILURES:
        return 0
    return min(MAX_DELAY, 2 ** (failures - FREE_FAILURES))


def login_gate(cur: Cursor, subject: bytes) -> Gate:
    """Where this login name stands; a lock that has run out is forgotten."""
    cur.execute(
        """
        SELECT failures, locked_until, last_failed_at,
               locked_until IS NOT NULL AND locked_until <= now() AS lock_over,
               extract(epoch FROM now() - last_failed_at) AS since_failure
          FROM login_throttle WHERE subject = %s
        """,
        (subject,),
    )
    row = cur.fetchone()
    if row is None:
        return Gate(0, None, 0)
    if row["lock_over"]:
        cur.execute("DELETE FROM login_throttle WHERE subject = %s", (subject,))
        return Gate(0, None, 0)
    if row["locked_until"] is not None:
        return Gate(row["failures"], row["locked_until"], 0)
    wait = delay_after(row["failures"]) - float(row["since_failure"] or 0)
    return Gate(row["failures"], None, max(0, math.ceil(wait)))


def enforce_gate(gate: Gate) -> None:
    if gate.locked_until is not None:
        raise errors.AccountLocked(
            "too many failed attempts: sign-in is locked for 30 minutes; reset the password by email to unlock it now",
            headers={"Retry-After": str(LOCK_SECONDS)},
        )
    if gate.wait_seconds > 0:
        raise errors.RateLimited(
            f"too many failed attempts; wait {gate.wait_seconds} s before trying again",
            retry_after=gate.wait_seconds,
        )


def record_login_failure(cur: Cursor, subject: bytes) -> tuple[int, bool]:
    """Count a failure; return (consecutive failures, whether this one locked the login)."""
    cur.execute(
        """
        INSERT INTO login_throttle AS t (subject, failures, last_failed_at)
        VALUES (%(s)s, 1, now())
        ON CONFLICT (subject) DO UPDATE
           SET failures = t.failures + 1, last_failed_at = now(),
               locked_until = CASE WHEN t.failures + 1 >= %(lock_after)s
                                   THEN now() + make_interval(secs => %(lock)s) END
        RETURNING failures, locked_until IS NOT NULL AS locked
        """,
        {"s": subject, "lock_after": LOCK_AFTER, "lock": LOCK_SECONDS},
    )
    row = cur.fetchone()
    return row["failures"], bool(row["locked"]) and row["failures"] == LOCK_AFTER


def clear_login_failures(cur: Cursor, subject: bytes) -> None:
    cur.execute("DELETE FROM login_throttle WHERE subject = %s", (subject,))
