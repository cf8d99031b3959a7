"""The audit vocabulary of identity and access, and how refusals are recorded.

Every auth event writes one audit row (``ledgerline.audit.record``). A change and its
row commit together; a refusal (wrong password, bad code, reused refresh token, rate
limit) changes nothing the caller keeps, so its row is written in a small transaction
of its own that commits although the request fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ledgerline import audit
from ledgerline.audit import Actor

# Action names, not secrets (ruff S105 reads "password"/"token" in a name as one).
# ruff: noqa: S105

# user.*: the account itself
USER_REGISTERED = "user.registered"
USER_CREATED = "user.created"  # by an operator (CLI) or an administrator
USER_ROLE_CHANGED = "user.role_changed"
USER_SUSPENDED = "user.suspended"
USER_REACTIVATED = "user.reactivated"
USER_PASSWORD_REHASHED = "user.password_rehashed"  # stronger hashing parameters applied at login

# auth.*: proving who one is, and the sessions that follow
LOGIN_SUCCEEDED = "auth.login_succeeded"
LOGIN_FAILED = "auth.login_failed"
ACCOUNT_LOCKED = "auth.account_locked"
TOKEN_REFRESHED = "auth.token_refreshed"
REFRESH_TOKEN_REUSED = "auth.refresh_token_reused"
SESSION_IDLE_ENDED = "auth.session_idle_ended"  # unused longer than the idle limit: ended at refresh
LOGOUT = "auth.logout"
SESSION_REVOKED = "auth.session_revoked"
SESSIONS_REVOKED = "auth.sessions_revoked"  # all of a user's sessions at once
OTP_SETUP_STARTED = "auth.otp_setup_started"
OTP_ENABLED = "auth.otp_enabled"
OTP_FAILED = "auth.otp_failed"
RECOVERY_CODE_USED = "auth.recovery_code_used"
PASSWORD_RESET_REQUESTED = "auth.password_reset_requested"
PASSWORD_RESET_SENT = "auth.password_reset_sent"  # the worker minted a token and mailed it
PASSWORD_RESET_SKIPPED = "auth.password_reset_skipped"  # unknown or suspended address, or mailed moments ago
PASSWORD_RESET_COMPLETED = "auth.password_reset_completed"
PASSWORD_RESET_FAILED = "auth.password_reset_failed"
RATE_LIMITED = "auth.rate_limited"
# Registration without account enumeration (ledgerline.auth.verification)
REGISTRATION_ADDRESS_TAKEN = "auth.registration_address_taken"  # its owner gets a notice, the caller a 202
EMAIL_VERIFICATION_SENT = "auth.email_verification_sent"  # the worker mailed a token (or the taken notice)
EMAIL_VERIFICATION_SKIPPED = "auth.email_verification_skipped"  # verified meanwhile, suspended, or mailed moments ago
EMAIL_VERIFICATION_FAILED = "auth.email_verification_failed"
EMAIL_VERIFIED = "user.email_verified"
VELOCITY_BLOCKED = "auth.velocity_blocked"

# api_key.*: server-to-server credentials
API_KEY_CREATED = "api_key.created"
API_KEY_REVOKED = "api_key.revoked"

ALL = tuple(v for k, v in sorted(globals().items()) if k.isupper() and isinstance(v, str) and "." in v)

Runner = Callable[[Callable[[Any], Any]], Any]

_side = threading.local()


def _side_connection() -> Any:
    """A second connection of this thread, for rows that must survive the caller's
    rollback (the caller's transaction is open on the first)."""
    from ledgerline.db.connection import app_url, connect

    conn = getattr(_side, "conn", None)
    if conn is None or conn.closed:
        conn = _side.conn = connect(app_url(), application_name="ledgerline-audit-side")
    return conn


def side_transaction(work: Callable[[Any], Any]) -> Any:
    """Run ``work`` in its own transaction on a second connection and commit it."""
    from ledgerline.db.tx import transaction

    return transaction(work, connection=_side_connection)


def record_refusal(
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: Any = None,
    *,
    metadata: dict[str, Any] | None = None,
    run: Runner | None = None,
) -> None:
    """Audit a refused attempt in its own transaction (``run``: the plain transaction
    helper when no transaction is open on this thread, else a side transaction)."""
    (run or side_transaction)(
        lambda cur: audit.record(cur, actor, action, resource_type, resource_id, metadata=metadata)
    )
