"""Users: registration, the operator's ``create_user``, profiles, admin management."""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledgerline import audit, errors, pagination
from ledgerline.audit import Actor
from ledgerline.auth import events, passwords, throttle
from ledgerline.auth.model import User

if TYPE_CHECKING:
    from ledgerline.db import Cursor

ROLES = ("user", "merchant", "admin", "auditor")
STATUSES = ("active", "suspended")
SELF_SERVICE_ROLES = ("user", "merchant")

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")  # E.164

_PUBLIC_COLUMNS = "id, email, full_name, role, status, phone_last4, created_at, updated_at"


def normalise_email(email: str) -> str:
    """The one form of an address that uniqueness, login and lookups compare.

    NFKC folds look-alike forms (fullwidth letters); format characters (zero-width
    space and joiners, the BOM, direction marks: Unicode category Cf) are invisible and
    dropped, so "ada@example.com" followed by a zero-width space is the same address.
    """
    folded = unicodedata.normalize("NFKC", email)
    visible = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return visible.strip().lower()


def check_email(email: str) -> str:
    normalised = normalise_email(email)
    if len(normalised) > 254 or not _EMAIL.fullmatch(normalised) or not normalised.isprintable():
        raise errors.ValidationFailed(
            "email is not a valid address", errors=[errors.FieldError("email", "use an address like name@example.com")]
        )
    return normalised


def check_full_name(full_name: str) -> str:
    name = " ".join(full_name.split())
    if not 1 <= len(name) <= 200:
        raise errors.ValidationFailed(
            "full_name must have 1 to 200 characters",
            errors=[errors.FieldError("full_name", "use 1 to 200 characters")],
        )
    return name


def check_phone(phone: str) -> str:
    compact = re.sub(r"[\s\-()]", "", phone)
    if not _PHONE.fullmatch(compact):
        raise errors.ValidationFailed(
            "phone must be in international format",
            errors=[errors.FieldError("phone", "use E.164, e.g. +2348031234567")],
        )
    return compact


def _protect_phone(cur: Cursor, user_id: UUID, phone: str) -> None:
    """Store a phone number as docs/design.md requires: an envelope (AES-256-GCM, bound to this
    row and column) and a keyed blind index for lookups; never the number itself."""
    from ledgerline import crypto

    cur.execute(
        "UPDATE users SET phone_ciphertext = %s, phone_blind_index = %s, phone_last4 = %s WHERE id = %s",
        (
            crypto.encrypt_field(phone, table="users", column="phone_ciphertext", row_id=user_id),
            crypto.blind_index(phone, kind="phone"),
            phone[-4:],
            user_id,
        ),
    )


def phone_of(cur: Cursor, user_id: UUID) -> str | None:
    """The decrypted phone number (for notifications); None when there is none."""
    cur.execute("SELECT phone_ciphertext FROM users WHERE id = %s", (user_id,))
    row = cur.fetchone()
    if row is None or row["phone_ciphertext"] is None:
        return None
    from ledgerline import crypto

    return crypto.decrypt_field(
        bytes(row["phone_ciphertext"]), table="users", column="phone_ciphertext", row_id=user_id
    )


def create_user(
    cur: Cursor,
    *,
    email: str,
    password: str,
    full_name: str,
    role: str = "user",
    phone: str | None = None,
    actor: Actor,
    action: str = events.USER_CREATED,
) -> User:
    """Create a user (any role: the operator's CLI and administrators use it)."""
    email = check_email(email)
    full_name = check_full_name(full_name)
    if role not in ROLES:
        raise errors.ValidationFailed(
            f"role must be one of {', '.join(ROLES)}", errors=[errors.FieldError("role", f"use one of {ROLES}")]
        )
    phone = check_phone(phone) if phone else None
    passwords.check_policy(password, email=email)
    cur.execute(
        f"""
        INSERT INTO users (email, full_name, role, password_hash)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT (email) DO NOTHING
        RETURNING {_PUBLIC_COLUMNS}
        """,
        (email, full_name, role, passwords.hash_password(password)),
    )
    row = cur.fetchone()
    if row is None:
        raise errors.Conflict("an account with this email already exists; sign in or reset the password")
    if phone:
        _protect_phone(cur, row["id"], phone)
        row["phone_last4"] = phone[-4:]
    user = User.from_row(row)
    if actor.id is None and action == events.USER_REGISTERED:
        actor = Actor(id=row["id"], type=role, ip=actor.ip, user_agent=actor.user_agent, request_id=actor.request_id)
    audit.record(cur, actor, action, "user", row["id"], after=_audit_view(row))
    return user


def register(cur: Cursor, *, email: str, password: str, full_name: str, phone: str | None = None, actor: Actor) -> None:
    """Self-service sign-up (always the ``user`` role), without account enumeration.

    A taken and a free address get the same answer and cost the same work: both paths
    validate, hash the password (argon2id, the bulk of the time), run one INSERT, protect
    the phone number when one is given, write one audit row and queue one mail
    (``verification.request``). A free address becomes an unverified account and is mailed
    a verification token; a taken one changes nothing and its owner is told. Nothing is
    returned: the caller learns only that the request was well formed.
    """
    from ledgerline.auth import verification

    email = check_email(email)
    full_name = check_full_name(full_name)
    phone = check_phone(phone) if phone else None
    passwords.check_policy(password, email=email)
    password_hash = passwords.hash_password(password)
    cur.execute(
        f"""
        INSERT INTO users (email, full_name, role, password_hash, email_verified_at)
        VALUES (%s, %s, 'user', %s, NULL)
        ON CONFLICT (email) DO NOTHING
        RETURNING {_PUBLIC_COLUMNS}
        """,
        (email, full_name, password_hash),
    )
    row = cur.fetchone()
    if row is not None:
        if phone:
            _protect_phone(cur, row["id"], phone)
        who = Actor(id=row["id"], type="user", ip=actor.ip, user_agent=actor.user_agent, request_id=actor.request_id)
        audit.record(cur, who, events.USER_REGISTERED, "user", row["id"], after=_audit_view(row))
        verification.request(cur, row["id"], taken=False, password_hash=password_hash, full_name=full_name)
        return
    # Taken: one indexed read instead of the insert's writes (well under a millisecond,
    # against the tens the hash costs both paths).
    cur.execute("SELECT id FROM users WHERE email = %s", (email,))
    owner = cur.fetchone()["id"]
    if phone:
        _protect_nothing(owner, phone)
    audit.record(
        cur, actor, events.REGISTRATION_ADDRESS_TAKEN, "user", owner,
        metadata={"email_sha256": throttle.login_subject(email).hex()},
    )  # fmt: skip
    verification.request(cur, owner, taken=True, password_hash=password_hash, full_name=full_name)


def _protect_nothing(user_id: UUID, phone: str) -> None:
    """The phone's encryption and blind index, computed and dropped: a taken address with
    a phone number must cost what a free one does."""
    from ledgerline import crypto

    crypto.encrypt_field(phone, table="users", column="phone_ciphertext", row_id=user_id)
    crypto.blind_index(phone, kind="phone")


def _audit_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"email": row["email"], "full_name": row["full_name"], "role": row["role"], "status": row["status"]}


def get_user(cur: Cursor, user_id: UUID) -> User:
    """The user's profile, with whether a second factor is enabled."""
    cur.execute(
        f"""
        SELECT {_PUBLIC_COLUMNS},
               EXISTS (SELECT 1 FROM otp_credentials o WHERE o.user_id = users.id AND o.confirmed_at IS NOT NULL)
                 AS otp_enabled
          FROM users WHERE id = %s
        """,
        (user_id,),
    )
    row = cur.fetchone()
    if row is None:
        raise errors.NotFound("no such user")
    return User.from_row(row)


def list_users(
    cur: Cursor,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    role: str | None = None,
    status: str | None = None,
    email: str | None = None,
) -> tuple[list[User], str | None]:
    """Users, newest first, a page at a time (filtered by role, status or email)."""
    limit = pagination.check_limit(limit)
    after = pagination.decode(cursor)
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": limit + 1}
    if after:
        where.append("(created_at, id) < (%(t)s, %(id)s)")
        params.update(t=after[0], id=after[1])
    if role:
        where.append("role = %(role)s")
        params["role"] = role
    if status:
        where.append("status = %(status)s")
        params["status"] = status
    if email:
        where.append("email = %(email)s")
        params["email"] = normalise_email(email)
    cur.execute(
        f"SELECT {_PUBLIC_COLUMNS} FROM users WHERE {' AND '.join(where)} "
        "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
        params,
    )
    rows, next_cursor = pagination.page(cur.fetchall(), limit)
    return [User.from_row(r) for r in rows], next_cursor


def update_user(
    cur: Cursor, user_id: UUID, *, role: str | None = None, status: str | None = None, actor: Actor
) -> User:
    """An administrator changes a user's role and/or status; audited with before/after.

    Suspending ends every session at once (and the user's access tokens stop working on
    their next request, since every request checks the status). A role change ends every
    session and revokes every API key: what was granted under the old role does not
    carry over, and the new role starts from a fresh login under its own rules (a
    second factor for administrators and auditors).
    """
    if role is None and status is None:
        raise errors.ValidationFailed(
            "send role and/or status", errors=[errors.FieldError("body", "nothing to change")]
        )
    if role is not None and role not in ROLES:
        raise errors.ValidationFailed(
            f"role must be one of {', '.join(ROLES)}", errors=[errors.FieldError("role", f"use one of {ROLES}")]
        )
    if status is not None and status not in STATUSES:
        raise errors.ValidationFailed(
            "status must be active or suspended", errors=[errors.FieldError("status", "use active or suspended")]
        )
    if actor.id == user_id:
        raise errors.Forbidden("administrators cannot change their own role or status; ask another administrator")
    cur.execute(f"SELECT {_PUBLIC_COLUMNS} FROM users WHERE id = %s FOR UPDATE", (user_id,))
    before = cur.fetchone()
    if before is None or before["role"] == "system":
        raise errors.NotFound("no such user")
    new_role = role or before["role"]
    new_status = status or before["status"]
    cur.execute(
        f"UPDATE users SET role = %s, status = %s, updated_at = now() WHERE id = %s RETURNING {_PUBLIC_COLUMNS}",
        (new_role, new_status, user_id),
    )
    after = cur.fetchone()
    if new_role != before["role"]:
        from ledgerline.auth import apikeys, sessions

        ended = sessions.revoke_all(cur, user_id, reason="role_changed")
        keys = apikeys.revoke_all(cur, user_id, actor, reason="role_changed")
        audit.record(
            cur, actor, events.USER_ROLE_CHANGED, "user", user_id,
            before={"role": before["role"]}, after={"role": new_role},
            metadata={"sessions_ended": ended, "api_keys_revoked": keys},
        )  # fmt: skip
    if new_status != before["status"]:
        action = events.USER_SUSPENDED if new_status == "suspended" else events.USER_REACTIVATED
        audit.record(
            cur, actor, action, "user", user_id, before={"status": before["status"]}, after={"status": new_status}
        )
        if new_status == "suspended":
            from ledgerline.auth import sessions

            sessions.revoke_all(cur, user_id, reason="user_suspended")
    return User.from_row(after)
