"""Proving an e-mail address: the mail a registration asks for, and its token.

A self-service registration answers the same for a taken and a free address, so what
differs happens here, out of the caller's sight. The request records one row
(``email_verifications``) for the account concerned and queues an event carrying only
that row's id: ``verify`` for a new account, ``taken`` for an address that already has
one. The notification worker (``prepare_delivery``) then

* for a new account, or an address taken by an account that never verified it (its
  owner may have lost the first mail), mints a token, stores its SHA-256 digest only and
  hands the token to the e-mail alone (``auth.email_verification``);
* for an address taken by a verified account, sends its owner a notice that someone
  tried to register with it (``auth.registration_attempted``), with nothing to click;
* sends nothing to a suspended account, or to one mailed less than a minute ago (a
  stranger re-registering someone's address must not flood their inbox).

A token is 256 random bits, valid 24 hours, usable once; a redelivered message mints a
fresh one, so only the newest e-mail's token works. ``verify`` marks the account's
address verified; login refuses an unverified account (``email_not_verified``), only
after the password is proven.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledgerline import audit, errors, outbox
from ledgerline.audit import Actor
from ledgerline.auth import events, mailed, sessions

if TYPE_CHECKING:
    from ledgerline.db import Cursor

VERIFY_EVENT = "auth.email_verification"  # the mail with the token (the mailbox line's type)
TAKEN_EVENT = "auth.registration_attempted"  # the notice to an address's verified owner
EVENTS = (VERIFY_EVENT, TAKEN_EVENT)
TOKEN_TTL_HOURS = 24
MIN_SECONDS_BETWEEN_MAILS = 60  # one mail per minute per account, however often asked
TOKEN_PREFIX = "evt1_"  # noqa: S105 - a format marker, not a secret

Runner = Callable[[Callable[[Any], Any]], Any]


def request(cur: Cursor, user_id: UUID, *, taken: bool, password_hash: str, full_name: str) -> UUID:
    """Record the mail a registration asks for and queue its event (two statements,
    whichever the purpose: the registration's answer must not tell which). The row keeps
    the registration's password hash and name: verifying its token sets them on an account
    not verified yet (``verify``), so the address's owner never verifies an account whose
    password a stranger chose."""
    purpose = "taken" if taken else "verify"
    cur.execute(
        """
        INSERT INTO email_verifications (user_id, purpose, password_hash, full_name)
        VALUES (%s, %s, %s, %s) RETURNING id
        """,
        (user_id, purpose, password_hash, full_name),
    )
    verification_id = cur.fetchone()["id"]
    outbox.enqueue(
        cur, "notifications", {"type": TAKEN_EVENT if taken else VERIFY_EVENT, "verification_id": str(verification_id)}
    )
    return verification_id


_ROW_SQL = """
SELECT v.id, v.user_id, v.purpose, v.sent_at, v.used_at, v.skipped_reason,
       u.email, u.status, u.email_verified_at IS NOT NULL AS verified
  FROM email_verifications v JOIN users u ON u.id = v.user_id
 WHERE v.id = %s
   FOR UPDATE OF v, u
"""  # the account's row too: two mails to one account decide "sent moments ago" one after the other


def prepare_delivery(cur: Cursor, payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The event to mail, with a freshly minted token when it verifies; None when there
    is nothing to send."""
    try:
        verification_id = str(UUID(str(payload["verification_id"])))
    except (KeyError, ValueError):
        return None
    cur.execute(_ROW_SQL, (verification_id,))
    row = cur.fetchone()
    if row is None or row["used_at"] or row["skipped_reason"]:
        return None
    worker = Actor.system("notifications")
    # An address taken by an account that never proved it: its owner gets a verification
    # (the first mail may be lost); a verified owner gets the notice.
    verifies = not row["verified"]
    reason = _skip_reason(cur, row, verifies=verifies)
    if reason is not None:
        cur.execute(
            "UPDATE email_verifications SET skipped_reason = %s, password_hash = NULL WHERE id = %s",
            (reason, verification_id),
        )
        audit.record(
            cur, worker, events.EMAIL_VERIFICATION_SKIPPED, "user", row["user_id"],
            metadata={"reason": reason, "verification_id": verification_id, "purpose": row["purpose"]},
        )  # fmt: skip
        return None
    mail: dict[str, Any] = {
        "type": VERIFY_EVENT if verifies else TAKEN_EVENT,
        "verification_id": verification_id,
        "user_id": str(row["user_id"]),
        "email": row["email"],
    }
    if verifies:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        cur.execute(
            """
            UPDATE email_verifications
               SET sent_at = now(), token_hash = %s, expires_at = now() + make_interval(hours => %s)
             WHERE id = %s RETURNING expires_at
            """,
            (sessions.digest(token), TOKEN_TTL_HOURS, verification_id),
        )
        mail.update(token=token, expires_at=cur.fetchone()["expires_at"])
    else:
        # A notice verifies nothing: the stranger's password hash is not kept for it.
        cur.execute(
            "UPDATE email_verifications SET sent_at = now(), password_hash = NULL WHERE id = %s", (verification_id,)
        )
    audit.record(
        cur, worker, events.EMAIL_VERIFICATION_SENT, "user", row["user_id"],
        metadata={
            "verification_id": verification_id,
            "mail": mail["type"],
            "redelivery": row["sent_at"] is not None,
        },
    )  # fmt: skip
    return mail


def _skip_reason(cur: Cursor, row: Mapping[str, Any], *, verifies: bool) -> str | None:
    if row["status"] != "active":
        return "inactive"
    if row["purpose"] == "verify" and not verifies:
        return "verified"  # proven meanwhile (a later mail's token was used)
    if row["sent_at"] is not None:
        return None  # a redelivery of a mail that went out: send it again
    cur.execute(
        """
        SELECT 1 FROM email_verifications
         WHERE user_id = %s AND sent_at > now() - make_interval(secs => %s) LIMIT 1
        """,
        (row["user_id"], MIN_SECONDS_BETWEEN_MAILS),
    )
    return "recent" if cur.fetchone() is not None else None


def verify(token: str, actor: Actor, *, run: Runner | None = None) -> None:
    """Mark the address of the token's account verified; ``BadRequest`` for a token that
    is malformed, unknown, used, expired or of a suspended account (all alike)."""
    if run is None:
        from ledgerline.db import transaction

        run = transaction
    refused = errors.BadRequest("the verification link is not valid or has expired; register again for a new one")
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        events.record_refusal(
            actor, events.EMAIL_VERIFICATION_FAILED, "user", None, metadata={"reason": "malformed"}, run=run
        )
        raise refused

    def work(cur: Cursor) -> str:
        row = mailed.redeem(cur, "email_verifications", token, actor, events.EMAIL_VERIFICATION_FAILED)
        if row is None:
            return "refused"
        user_id = row["user_id"]
        # The account as the registration this token answers chose it: its password and
        # name. A phone number another registration left is dropped (it was not theirs).
        cur.execute(
            """
            UPDATE users u
               SET email_verified_at = now(), updated_at = now(),
                   password_hash = coalesce(v.password_hash, u.password_hash),
                   full_name = coalesce(v.full_name, u.full_name),
                   phone_ciphertext = CASE WHEN v.password_hash = u.password_hash THEN u.phone_ciphertext END,
                   phone_blind_index = CASE WHEN v.password_hash = u.password_hash THEN u.phone_blind_index END,
                   phone_last4 = CASE WHEN v.password_hash = u.password_hash THEN u.phone_last4 END
              FROM email_verifications v
             WHERE v.id = %s AND u.id = v.user_id AND u.email_verified_at IS NULL
            """,
            (row["id"],),
        )
        already = cur.rowcount == 0
        cur.execute("UPDATE email_verifications SET used_at = now(), password_hash = NULL WHERE id = %s", (row["id"],))
        who = Actor(id=user_id, type=row["role"], ip=actor.ip, user_agent=actor.user_agent, request_id=actor.request_id)
        audit.record(
            cur, who, events.EMAIL_VERIFIED, "user", user_id,
            metadata={"verification_id": str(row["id"]), "already_verified": already},
        )  # fmt: skip
        return "ok"

    if run(work) != "ok":
        raise refused
