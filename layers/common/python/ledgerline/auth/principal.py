"""Who is calling: the claims of a verified access token, checked against the database.

A signature only proves the token was issued; it does not prove it still stands. Every
authenticated request checks, in one query: the user exists and is active (a suspended
user's tokens stop at once), the token's jti was not revoked (logout), its session was
not revoked (revoke-all, password reset, role change, refresh-token reuse), and takes the
role from the database, not from the token (a demoted admin is demoted at once), with
the second-factor rule of that role (``second_factor``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledgerline import errors
from ledgerline.auth import apikeys, second_factor
from ledgerline.http.endpoint import Principal

_STATE_SQL = """
SELECT u.role, u.status,
       EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = %(jti)s) AS jti_revoked,
       COALESCE((SELECT s.revoked_at IS NOT NULL OR s.expires_at <= now() OR s.user_id <> u.id
                   FROM sessions s WHERE s.id = %(sid)s), true) AS session_ended
  FROM users u
 WHERE u.id = %(sub)s
"""

# A key acts with the reach of a merchant, whatever its owner's role is or becomes (a
# role change revokes the owner's keys; an owner who is no longer a merchant has none).
_API_KEY_SQL = """
SELECT 1 FROM api_keys k JOIN users u ON u.id = k.user_id
 WHERE k.id = %(key)s AND k.user_id = %(sub)s AND k.revoked_at IS NULL AND u.status = 'active'
   AND u.role = 'merchant'
"""


def _uuid(value: Any) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise errors.Unauthorized("the access token is not valid; log in again") from None


def principal_state(cur: Any, claims: dict[str, Any]) -> Principal:
    """The principal of ``claims``, or ``Unauthorized`` when the token no longer stands.

    Every access token belongs to a session (claim ``sid``): ending the session ends the
    token, so a role change, a password reset or a logout reaches every token issued.
    """
    if claims.get("typ") == "api_key":
        return _api_key_state(cur, claims)
    if claims.get("typ") != "access":
        raise errors.Unauthorized("the token is not an access token")
    sub = _uuid(claims.get("sub"))
    jti = _uuid(claims.get("jti"))
    sid = _uuid(claims.get("sid"))
    cur.execute(_STATE_SQL, {"sub": sub, "jti": jti, "sid": sid})
    row = cur.fetchone()
    if row is None or row["status"] != "active":
        raise errors.Unauthorized("this account cannot sign in; contact support")
    if row["jti_revoked"] or row["session_ended"]:
        raise errors.Unauthorized("the session has ended; log in again")
    role = row["role"]
    return Principal(
        id=sub,
        role=role,
        claims=dict(claims),
        enrolment_only=second_factor.enrolment_only(role, claims.get("amr")),
    )


def _api_key_state(cur: Any, claims: dict[str, Any]) -> Principal:
    sub = _uuid(claims.get("sub"))
    cur.execute(_API_KEY_SQL, {"key": _uuid(claims.get("api_key_id")), "sub": sub})
    if cur.fetchone() is None:
        raise errors.Unauthorized("the API key is not valid or was revoked")
    return Principal(id=sub, role=apikeys.KEY_ROLE, claims=dict(claims))


def authenticate(claims: dict[str, Any]) -> Principal:
    """The Endpoint's authenticator for every route (claims already signature-checked
    by API Gateway's JWT authorizer, or by the local gateway)."""
    from ledgerline.db import transaction

    # One SELECT, a transaction by itself: one round trip on every authenticated request.
    return transaction(lambda cur: principal_state(cur, claims), single_statement=True)
