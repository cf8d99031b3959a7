"""Single-use tokens mailed to a user: a password reset, an e-mail verification.

Each is a row of its own table (``password_resets``, ``email_verifications``) holding the
token's SHA-256 digest, its expiry and when it was used; the worker that mailed it minted
it (no token travels in an outbox row). Redeeming one is the same for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from psycopg2 import sql

from ledgerline import audit
from ledgerline.audit import Actor
from ledgerline.auth.sessions import digest

if TYPE_CHECKING:
    from ledgerline.db import Cursor

Table = Literal["password_resets", "email_verifications"]


def redeem(cur: Cursor, table: Table, token: str, actor: Actor, failed: str) -> dict[str, Any] | None:
    """Lock the row of ``token`` with its user, when the token is unused, unexpired and
    its user active: {id, user_id, email, role}. Otherwise audit ``failed`` with the reason
    (unknown, used, expired, inactive) and return None; the caller refuses in words that
    say none of this."""
    cur.execute(
        sql.SQL(
            """
            SELECT t.id, t.user_id, t.used_at, t.expires_at <= now() AS expired, u.email, u.role, u.status
              FROM {} t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = %s FOR UPDATE OF t, u
            """
        ).format(sql.Identifier(table)),
        (digest(token),),
    )
    row = cur.fetchone()
    if row is None or row["used_at"] is not None or row["expired"] or row["status"] != "active":
        reason = "unknown" if row is None else "used" if row["used_at"] else "expired" if row["expired"] else "inactive"
        audit.record(cur, actor, failed, "user", row["user_id"] if row else None, metadata={"reason": reason})
        return None
    return {key: row[key] for key in ("id", "user_id", "email", "role")}
