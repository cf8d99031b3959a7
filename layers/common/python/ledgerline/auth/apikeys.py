"""API keys: server-to-server credentials for merchants.

A key reads ``llk_<prefix>_<secret>``: the prefix (public, 8 hex) names it in lists and
logs; the whole key is 128 + 256 random bits and only its SHA-256 digest is stored, so
the secret is shown once, at creation. Each key carries scopes; revoking is immediate.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledgerline import audit, errors, pagination
from ledgerline.audit import Actor
from ledgerline.auth import events
from ledgerline.auth.model import ApiKey, NewApiKey

if TYPE_CHECKING:
    from ledgerline.db import Cursor

KEY_PREFIX = "llk_"
MAX_ACTIVE_KEYS = 20
KEY_ROLE = "merchant"  # the reach of every key, whatever its owner's role becomes
ROLES_ALLOWED = (KEY_ROLE,)
LAST_USED_RESOLUTION = "1 minute"  # last_used_at is written at most this often per key
TYP = "api_key"  # the ``typ`` of an API key's claims, beside access tokens' "access"


def available_scopes() -> tuple[str, ...]:
    """Every scope some route accepts (``Route.key_scope``): new routes bring theirs."""
    from ledgerline import routes

    return tuple(sorted({r.key_scope for r in routes.ROUTES if r.key_scope}))


_COLUMNS = "id, name, prefix, scopes, created_at, last_used_at, revoked_at"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    """An ``api_keys`` row (``_COLUMNS``) as ``ApiKey``'s fields: the prefix as shown."""
    return {
        "id": row["id"],
        "name": row["name"],
        "prefix": KEY_PREFIX + row["prefix"],
        "scopes": tuple(row["scopes"]),
        "created_at": row["created_at"],
        "last_used_at": row["last_used_at"],
        "revoked_at": row["revoked_at"],
    }


def create(cur: Cursor, principal: Any, *, name: str, scopes: list[str], actor: Actor) -> NewApiKey:
    """A new key of the caller (a merchant); its secret is in the answer and nowhere else."""
    if principal.role not in ROLES_ALLOWED:
        raise errors.Forbidden("API keys are for merchant accounts")
    name = " ".join((name or "").split())
    if not 1 <= len(name) <= 100:
        raise errors.ValidationFailed(
            "name must have 1 to 100 characters", errors=[errors.FieldError("name", "1..100")]
        )
    known = available_scopes()
    unknown = sorted(set(scopes) - set(known))
    if not scopes or unknown:
        raise errors.ValidationFailed(
            f"scopes must be some of: {', '.join(known)}",
            errors=[errors.FieldError("scopes", f"unknown: {', '.join(unknown)}" if unknown else "at least one")],
        )
    cur.execute("SELECT count(*) AS n FROM api_keys WHERE user_id = %s AND revoked_at IS NULL", (principal.id,))
    if cur.fetchone()["n"] >= MAX_ACTIVE_KEYS:
        raise errors.Conflict(f"at most {MAX_ACTIVE_KEYS} active keys; revoke one first")
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    cur.execute(
        f"""
        INSERT INTO api_keys (user_id, name, prefix, secret_hash, scopes)
        VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}
        """,
        (principal.id, name, prefix, _digest(key), sorted(set(scopes))),
    )
    created = NewApiKey(**_fields(cur.fetchone()), key=key)
    audit.record(
        cur, actor, events.API_KEY_CREATED, "api_key", created.id,
        after={"name": name, "prefix": created.prefix, "scopes": list(created.scopes)},
    )  # fmt: skip
    return created


def list_keys(
    cur: Cursor, principal: Any, *, limit: int | None = None, cursor: str | None = None
) -> tuple[list[ApiKey], str | None]:
    """The caller's keys, revoked ones too, newest first, a page at a time."""
    limit = pagination.check_limit(limit)
    after = pagination.decode(cursor)
    params: dict[str, Any] = {"user": principal.id, "limit": limit + 1}
    where = "user_id = %(user)s"
    if after:
        where += " AND (created_at, id) < (%(t)s, %(id)s)"
        params.update(t=after[0], id=after[1])
    cur.execute(
        f"SELECT {_COLUMNS} FROM api_keys WHERE {where} ORDER BY created_at DESC, id DESC LIMIT %(limit)s", params
    )
    rows, next_cursor = pagination.page(cur.fetchall(), limit)
    return [ApiKey(**_fields(r)) for r in rows], next_cursor


def revoke(cur: Cursor, principal: Any, key_id: UUID, actor: Actor) -> None:
    """Revoke one of the caller's keys; another user's key is 404."""
    cur.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s AND user_id = %s FOR UPDATE", (key_id, principal.id))
    row = cur.fetchone()
    if row is None:
        raise errors.NotFound("no such API key")
    if row["revoked_at"] is not None:
        return
    cur.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key_id,))
    audit.record(
        cur, actor, events.API_KEY_REVOKED, "api_key", key_id,
        before={"revoked": False}, after={"revoked": True, "prefix": KEY_PREFIX + row["prefix"]},
    )  # fmt: skip


def authenticate_key(cur: Cursor, key: str) -> dict[str, Any] | None:
    """The claims of an active key of an active merchant, else None. The shape matches
    access-token claims where the Endpoint reads them.

    One statement, and a write only for a real key whose last use is older than
    ``LAST_USED_RESOLUTION``: a made-up key costs an index probe, never an UPDATE.
    """
    if not isinstance(key, str) or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    cur.execute(
        f"""
        WITH found AS (
          SELECT k.id, k.user_id, k.scopes, k.last_used_at FROM api_keys k JOIN users u ON u.id = k.user_id
           WHERE k.secret_hash = %s AND k.revoked_at IS NULL AND u.status = 'active' AND u.role = %s
        ), used AS (
          UPDATE api_keys k SET last_used_at = now() FROM found f
           WHERE k.id = f.id AND (f.last_used_at IS NULL OR f.last_used_at < now() - interval '{LAST_USED_RESOLUTION}')
        )
        SELECT id, user_id, scopes FROM found
        """,
        (_digest(key), KEY_ROLE),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return {
        "typ": TYP,
        "sub": str(row["user_id"]),
        "role": KEY_ROLE,
        "api_key_id": str(row["id"]),
        "scope": " ".join(row["scopes"]),
    }


def revoke_all(cur: Cursor, user_id: UUID, actor: Actor, *, reason: str) -> int:
    """Revoke every active key of a user (their role changed); each is audited."""
    cur.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL RETURNING id, prefix",
        (user_id,),
    )
    rows = cur.fetchall()
    for row in rows:
        audit.record(
            cur, actor, events.API_KEY_REVOKED, "api_key", row["id"],
            before={"revoked": False}, after={"revoked": True, "prefix": KEY_PREFIX + row["prefix"]},
            metadata={"reason": reason},
        )  # fmt: skip
    return len(rows)


def authorize(key: str) -> dict[str, Any]:
    """For an authorizer (the local gateway; a Lambda authorizer in AWS): claims of a
    valid key, else ``Unauthorized``."""
    from ledgerline.db import transaction

    claims = transaction(lambda cur: authenticate_key(cur, key), single_statement=True)
    if claims is None:
        raise errors.Unauthorized("the API key is not valid or was revoked")
    return claims


def check_scope(route: Any, claims: dict[str, Any]) -> None:
    """Refuse (403) a route the key's scopes do not cover, or one no key may call."""
    granted = str(claims.get("scope") or "").split()
    if route.key_scope is None or route.key_scope not in granted:
        what = (
            "this route cannot be called with an API key"
            if route.key_scope is None
            else f"needs scope {route.key_scope}"
        )
        raise errors.Forbidden(f"API key refused: {what}")
