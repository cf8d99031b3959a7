"""Password reset by email. Nothing secret travels, and nothing tells who has an account.

``request_reset`` does the same work for every address (202 either way): it records that
the address asked and queues an event carrying only that request's id. It never looks
the address up, so an existing address takes no longer to answer than an unknown one.

The notification worker (``prepare_delivery``) then looks the address up and, for an
active account not mailed in the last minute, mints the token, stores its SHA-256
digest only, and hands the token to the e-mail alone: no outbox row, queue message or
log line ever holds it. A redelivered message mints a fresh token, so only the newest
e-mail's token works. A token is 256 random bits, valid 30 minutes, usable once;
confirming sets the new password, ends every session, lifts a login lock and marks an
unverified address verified (the mailbox proved who they are).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledgerline import audit, errors, outbox
from ledgerline.audit import Actor
from ledgerline.auth import events, mailed, passwords, sessions, throttle
from ledgerline.auth import users as users_mod

if TYPE_CHECKING:
    from ledgerline.db import Cursor

EVENT = "auth.password_reset"  # the notification event type
TOKEN_TTL_MINUTES = 30
MIN_SECONDS_BETWEEN_MAILS = 60  # one mail per minute per account, however often asked
TOKEN_PREFIX = "prt1_"  # noqa: S105 - a format marker, not a secret

Runner = Callable[[Callable[[Any], Any]], Any]


def request_reset(cur: Cursor, email: str, actor: Actor) -> None:
    """Record a reset request; the same three statements for any address."""
    email_n = users_mod.normalise_email(email)[:254]
    cur.execute("INSERT INTO password_resets (email) VALUES (%s) RETURNING id", (email_n,))
    reset_id = cur.fetchone()["id"]
    outbox.enqueue(cur, "notifications", {"type": EVENT, "reset_id": str(reset_id)})
    audit.record(
        cur, actor, events.PASSWORD_RESET_REQUESTED, "password_reset", reset_id,
        metadata={"email_sha256": throttle.login_subject(email_n).hex()},
    )  # fmt: skip


_REQUEST_SQL = """
SELECT r.id, r.user_id, r.token_hash IS NOT NULL AS minted, r.used_at, r.skipped_reason,
       r.expires_at <= now() AS expired, u.id AS account_id, u.email AS account_email, u.status
  FROM password_resets r
  LEFT JOIN users u ON u.role <> 'system'
                   AND (u.id = r.user_id OR (r.user_id IS NULL AND u.email = r.email))
 WHERE r.id = %s
   FOR UPDATE OF r
"""


def prepare_delivery(cur: Cursor, payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The reset e-mail's event with its freshly minted token, or None: nothing to send
    (an unknown or suspended address, one mailed moments ago, a spent request)."""
    try:
        reset_id = str(UUID(str(payload["reset_id"])))
    except (KeyError, ValueError):
        return None  # an event of the old format: its token died with the migration
    cur.execute(_REQUEST_SQL, (reset_id,))
    row = cur.fetchone()
    if row is None or row["used_at"] or row["skipped_reason"] or row["expired"]:
        return None
    worker = Actor.system("notifications")
    reason = _skip_reason(cur, row)
    if reason is not None:
        cur.execute(
            "UPDATE password_resets SET skipped_reason = %s, user_id = %s WHERE id = %s",
            (reason, row["account_id"], reset_id),
        )
        audit.record(
            cur, worker, events.PASSWORD_RESET_SKIPPED, "user", row["account_id"],
            metadata={"reason": reason, "reset_id": reset_id},
        )  # fmt: skip
        return None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    cur.execute(
        """
        UPDATE password_resets
           SET user_id = %s, token_hash = %s, minted_at = now(),
               expires_at = coalesce(expires_at, now() + make_interval(mins => %s))
         WHERE id = %s RETURNING expires_at
        """,
        (row["account_id"], sessions.digest(token), TOKEN_TTL_MINUTES, reset_id),
    )
    expires_at = cur.fetchone()["expires_at"]
    audit.record(
        cur, worker, events.PASSWORD_RESET_SENT, "user", row["account_id"],
        metadata={"reset_id": reset_id, "fresh_token_for_redelivery": row["minted"]},
    )  # fmt: skip
    return {
        **payload,
        "user_id": str(row["account_id"]),
        "email": row["account_email"],
        "token": token,
        "expires_at": expires_at,
    }


def _skip_reason(cur: Cursor, row: Mapping[str, Any]) -> str | None:
    if row["account_id"] is None:
        return "unknown"
    if row["status"] != "active":
        return "inactive"
    if row["minted"]:
        return None  # a redelivery of a request that was mailed: mint again
    cur.execute(
        """
        SELECT 1 FROM password_resets
         WHERE user_id = %s AND minted_at > now() - make_interval(secs => %s) LIMIT 1
        """,
        (row["account_id"], MIN_SECONDS_BETWEEN_MAILS),
    )
    return "recent" if cur.fetchone() is not None else None


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

    def work(cur: Cursor) -> str:
        row = mailed.redeem(cur, "password_resets", token, actor, events.PASSWORD_RESET_FAILED)
        if row is None:
            return "refused"
        passwords.check_policy(new_password, email=row["email"], field="new_password")
        user_id = row["user_id"]
        # The reset token came through the mailbox: that proves the address too.
        cur.execute(
            """
            UPDATE users SET password_hash = %s, email_verified_at = coalesce(email_verified_at, now()),
                   updated_at = now()
             WHERE id = %s
            """,
            (passwords.hash_password(new_password), user_id),
        )
        cur.execute(
            "UPDATE password_resets SET used_at = now() WHERE user_id = %s AND token_hash IS NOT NULL AND used_at IS NULL",
            (user_id,),
        )
        ended = sessions.revoke_all(cur, user_id, reason="password_reset")
        throttle.clear_login_failures(cur, throttle.login_subject(row["email"]))
        who = Actor(id=user_id, type=row["role"], ip=actor.ip, user_agent=actor.user_agent, request_id=actor.request_id)
        audit.record(cur, who, events.PASSWORD_RESET_COMPLETED, "user", user_id, metadata={"sessions_ended": ended})
        return "ok"

    if run(work) != "ok":
        raise refused
