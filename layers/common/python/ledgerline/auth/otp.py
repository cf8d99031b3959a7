"""Two-factor authentication: TOTP (RFC 6238) enrolment and checks, and recovery codes.

The TOTP secret is field-encrypted (``ledgerline.crypto``, bound to its row); a code is
accepted once (``last_step``), within one 30 s step of clock drift. Recovery codes are
80 random bits each, stored as SHA-256 digests, usable once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pyotp

from ledgerline import audit, errors
from ledgerline.audit import Actor
from ledgerline.auth import events
from ledgerline.auth.model import OtpEnrolment

if TYPE_CHECKING:
    from ledgerline.db import Cursor

ISSUER = "Ledgerline"
RECOVERY_CODES = 10
VALID_WINDOW = 1  # steps either side of now
STEP_SECONDS = 30
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def _seal(user_id: UUID, secret: str) -> bytes:
    from ledgerline import crypto

    return crypto.encrypt_field(secret, table="otp_credentials", column="secret", row_id=user_id)


def _open(user_id: UUID, blob: Any) -> str:
    from ledgerline import crypto

    return crypto.decrypt_field(bytes(blob), table="otp_credentials", column="secret", row_id=user_id)


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))  # 16 x 5 bits
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _recovery_digest(code: str) -> bytes:
    canonical = code.replace("-", "").replace(" ", "").upper()
    return hashlib.sha256(canonical.encode()).digest()


def setup(cur: Cursor, user_id: UUID, email: str, actor: Actor) -> OtpEnrolment:
    """Start (or restart) enrolment: a new secret and new recovery codes.

    Refused once 2FA is confirmed: replacing a working factor would need the old one.
    """
    cur.execute("SELECT confirmed_at FROM otp_credentials WHERE user_id = %s FOR UPDATE", (user_id,))
    row = cur.fetchone()
    if row is not None and row["confirmed_at"] is not None:
        raise errors.Conflict("two-factor authentication is already enabled on this account")
    secret = pyotp.random_base32(32)  # 160 bits
    sealed = _seal(user_id, secret)
    cur.execute(
        """
        INSERT INTO otp_credentials (user_id, secret, secret_encrypted) VALUES (%s, %s, true)
        ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, secret_encrypted = true,
                                            confirmed_at = NULL, last_step = NULL, created_at = now()
        """,
        (user_id, sealed),
    )
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    cur.execute("DELETE FROM recovery_codes WHERE user_id = %s", (user_id,))
    cur.execute(
        "INSERT INTO recovery_codes (user_id, code_hash) SELECT %s, unnest(%s::bytea[])",
        (user_id, [_recovery_digest(c) for c in codes]),
    )
    audit.record(cur, actor, events.OTP_SETUP_STARTED, "user", user_id)
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    return OtpEnrolment(secret=secret, otpauth_uri=uri, recovery_codes=tuple(codes))


def _totp_step(secret: str, code: str, last_step: int | None, now: float) -> int | None:
    """The step the code belongs to, if valid and newer than the last one used."""
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // STEP_SECONDS)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if secrets.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step if last_step is None or step > last_step else None
    return None


def check_code(cur: Cursor, user_id: UUID, code: str, actor: Actor, *, now: float | None = None) -> bool:
    """True when ``code`` is a current TOTP code (not used before) or an unused recovery
    code of a user with confirmed 2FA; the code is then spent (in this transaction)."""
    cur.execute(
        "SELECT secret, last_step FROM otp_credentials WHERE user_id = %s AND confirmed_at IS NOT NULL FOR UPDATE",
        (user_id,),
    )
    row = cur.fetchone()
    if row is None:
        return False
    code = (code or "").strip()
    step = _totp_step(_open(user_id, row["secret"]), code, row["last_step"], time.time() if now is None else now)
    if step is not None:
        cur.execute("UPDATE otp_credentials SET last_step = %s WHERE user_id = %s", (step, user_id))
        return True
    if len(code.replace("-", "")) == 16:
        cur.execute(
            """
            UPDATE recovery_codes SET used_at = now()
             WHERE user_id = %s AND code_hash = %s AND used_at IS NULL RETURNING id
            """,
            (user_id, _recovery_digest(code)),
        )
        used = cur.fetchone()
        if used is not None:
            cur.execute("SELECT count(*) AS n FROM recovery_codes WHERE user_id = %s AND used_at IS NULL", (user_id,))
            audit.record(
                cur, actor, events.RECOVERY_CODE_USED, "user", user_id, metadata={"remaining": cur.fetchone()["n"]}
            )
            return True
    return False


def verify_enrolment(cur: Cursor, user_id: UUID, code: str, actor: Actor, *, now: float | None = None) -> bool:
    """Confirm enrolment with a first code from the app; 2FA is enforced from then on.
    False (nothing changed) when the code is not the app's current one."""
    cur.execute("SELECT secret, confirmed_at FROM otp_credentials WHERE user_id = %s FOR UPDATE", (user_id,))
    row = cur.fetchone()
    if row is None:
        raise errors.Conflict("start with POST /v1/auth/otp/setup")
    if row["confirmed_at"] is not None:
        raise errors.Conflict("two-factor authentication is already enabled on this account")
    step = _totp_step(_open(user_id, row["secret"]), (code or "").strip(), None, time.time() if now is None else now)
    if step is None:
        return False
    cur.execute("UPDATE otp_credentials SET confirmed_at = now(), last_step = %s WHERE user_id = %s", (step, user_id))
    audit.record(cur, actor, events.OTP_ENABLED, "user", user_id)
    return True


def otp_enabled(cur: Cursor, user_id: UUID) -> bool:
    cur.execute("SELECT 1 FROM otp_credentials WHERE user_id = %s AND confirmed_at IS NOT NULL", (user_id,))
    return cur.fetchone() is not None
