"""Password reset by email: the token travels only through the notifications queue.

``request_reset`` answers the same for every address (202), so it reveals nothing about
which accounts exist. The token is 256 random bits, stored as its SHA-256 digest, valid
for 30 minutes and once. Confirming sets the new password, ends every session of the
user, and lifts a login lock (the mailbox proved who they are).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from ledgerline import audit, errors, outbox
from ledgerline.audit import Actor
from ledgerline.auth import events, limits, passwords, sessions
from ledgerline.auth import users as users_mod

TOKEN_TTL_MINUTES = 30
MIN_SECONDS_BETWEEN_REQUESTS = 60  # one mail per minute per account, however often asked
TOKEN_PREFIX = "prt1_"  # noqa: S105 - a format marker, not a secret

Runner = Callable[[Callable[[Any], Any]], Any]


def request_reset(cur: Any, email: str, actor: Actor) -> None:
    email_n = users_mod.normalise_email(email)
    cur.execute(
        "SELECT id, email, role, status FROM users WHERE email = %s AND role <> 'system' FOR UPDATE", (email_n,)
    )
    user = cur.fetchone()
    if user is None or user["status"] != "active":
        audit.record(
            cur, actor, events.PASSWORD_RESET_REQUESTED, "user", None,
            metadata={"sent": False, "email_sha256": limits.login_subject(email_n).hex()},
        )  # fmt: skip
        return
    cur.execute(
        """
        SELECT 1 FROM password_reset_tokens
         WHERE user_id = %s AND created_at > now() - make_interval(secs => %s)
        """,
        (user["id"], MIN_SECONDS_BETWEEN_REQUESTS),
    )
    if cur.fetchone() is not None:
        audit.record(
            cur,
            actor,
            events.PASSWORD_RESET_REQUESTED,
            "user",
            user["id"],
            metadata={"sent": False, "reason": "recent"},
        )
        return
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    cur.execute(
        """
        INSERT INTO password_reset_tokens (token_hash, user_id, expires_at)
        VALUES (%s, %s, now() + make_interval(mins => %s)) RETURNING expires_at
        """,
        (sessions.digest(token), user["id"], TOKEN_TTL_MINUTES),
    )
    expires_at = cur.fetchone()["expires_at"]
    outbox.enqueue(
        cur,
        "notifications",
        {
            "type": "auth.password_reset",
            "channel": "email",
            "user_id": str(user["id"]),
            "email": user["email"],
            "token": token,
            "expires_at": expires_at,
        },
    )
    audit.record(cur, actor, events.PASSWORD_RESET_REQUESTED, "user", user["id"], metadata={"sent": True})


def confirm_reset(token: str, new_password: str, actor: Actor, *, run: Runner | None = None) -> None:
    """Set a new password with a reset token; every session of the user ends."""
    if run is None:
        from ledgerline.db import transaction

        run = transaction
    refused = errors.BadRequest("the reset link is not valid or has expired; request a new one")
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        events.record_refusal(
            actor, events.PASSWORD_RESET_FAILED, "user", None, metadata={"reason": "malformed"}, run=run
        )
        raise refused

    def work(cur: Any) -> str:
        cur.execute(
            """
            SELECT t.user_id, t.used_at, t.expires_at <= now() AS expired, u.email, u.role, u.status
              FROM password_reset_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = %s FOR UPDATE OF t, u
            """,
            (sessions.digest(token),),
        )
        row = cur.fetchone()
        if row is None or row["used_at"] is not None or row["expired"] or row["status"] != "active":
            reason = (
                "unknown" if row is None else "used" if row["used_at"] else "expired" if row["expired"] else "inactive"
            )
            audit.record(
                cur, actor, events.PASSWORD_RESET_FAILED, "user", row["user_id"] if row else None,
                metadata={"reason": reason},
            )  # fmt: skip
            return "refused"
        passwords.check_policy(new_password, email=row["email"], field="new_password")
        user_id = row["user_id"]
        cur.execute(
            "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s",
            (passwords.hash_password(new_password), user_id),
        )
        cur.execute(
            "UPDATE password_reset_tokens SET used_at = now() WHERE user_id = %s AND used_at IS NULL", (user_id,)
        )
        ended = sessions.revoke_all(cur, user_id, reason="password_reset")
        limits.clear_login_failures(cur, limits.login_subject(row["email"]))
        who = Actor(id=user_id, type=row["role"], ip=actor.ip, user_agent=actor.user_agent, request_id=actor.request_id)
        audit.record(cur, who, events.PASSWORD_RESET_COMPLETED, "user", user_id, metadata={"sessions_ended": ended})
        return "ok"

    if run(work) != "ok":
        raise refused
