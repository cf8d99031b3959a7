"""Housekeeping of identity state that has outlived its purpose (a scheduled job).

Nothing here is evidence: every event is in the audit trail. Sessions are kept (they
are the devices list's history); what goes is state that can no longer change an answer:
revocations of tokens already expired, spent or expired one-time tokens, throttles and
rate-limit windows long over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledgerline.db import Cursor

GRACE = "1 day"  # well past any token lifetime and any clock skew

_PURGES = {
    # An access token lives 15 minutes: its revocation matters no longer after that.
    "revoked_tokens": "DELETE FROM revoked_tokens WHERE ctid IN "
    f"(SELECT ctid FROM revoked_tokens WHERE expires_at < now() - interval '{GRACE}' LIMIT %(limit)s)",
    # Rotated or expired refresh tokens past their expiry cannot be used or reused.
    "refresh_tokens": "DELETE FROM refresh_tokens WHERE ctid IN "
    f"(SELECT ctid FROM refresh_tokens WHERE expires_at < now() - interval '{GRACE}' LIMIT %(limit)s)",
    # A reset link lives 30 minutes after the worker mints it (minutes after the request).
    "password_resets": "DELETE FROM password_resets WHERE ctid IN (SELECT ctid FROM password_resets "
    f"WHERE requested_at < now() - interval '{GRACE}' - interval '{GRACE}' LIMIT %(limit)s)",
    # A verification token lives 24 hours after the worker mints it (seconds after the
    # request); an account left unverified gets a new one by registering again.
    "email_verifications": "DELETE FROM email_verifications WHERE ctid IN (SELECT ctid FROM email_verifications "
    f"WHERE requested_at < now() - interval '1 day' - interval '{GRACE}' LIMIT %(limit)s)",
    # A new-country sign-in code lives 10 minutes (ledgerline.auth.new_country).
    "login_challenges": "DELETE FROM login_challenges WHERE ctid IN "
    f"(SELECT ctid FROM login_challenges WHERE expires_at < now() - interval '{GRACE}' LIMIT %(limit)s)",
    "login_throttle": "DELETE FROM login_throttle WHERE ctid IN (SELECT ctid FROM login_throttle "
    f"WHERE COALESCE(locked_until, last_failed_at) < now() - interval '{GRACE}' LIMIT %(limit)s)",
    "rate_limit_buckets": "DELETE FROM rate_limit_buckets WHERE ctid IN "
    f"(SELECT ctid FROM rate_limit_buckets WHERE resets_at < now() - interval '{GRACE}' LIMIT %(limit)s)",
}


def purge(cur: Cursor, *, limit: int = 10_000) -> dict[str, int]:
    """Delete up to ``limit`` stale rows of each kind; return how many went, by table."""
    out = {}
    for table, sql in _PURGES.items():
        cur.execute(sql, {"limit": limit})
        out[table] = cur.rowcount
    return out
