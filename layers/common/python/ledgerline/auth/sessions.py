"""Login, sessions and rotating refresh tokens (RFC 9700 reuse detection), logout.

A session is one login on one device. Its refresh tokens form a family: each use of a
refresh token retires it and issues the next one; presenting a retired token again means
it was copied, so the whole family (the session) is revoked and every access token that
names the session stops working (a retry within seconds, while the next token is unused,
is answered the same pair instead: ``refresh``). Refresh tokens are opaque, 256 bits (a
session's first random, each next one derived from its predecessor under a per-session
key), and stored as their SHA-256 digest only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledgerline import audit, errors, pagination
from ledgerline.audit import Actor
from ledgerline.auth import events, passwords, ratelimits, second_factor, throttle, tokens
from ledgerline.auth import users as users_mod
from ledgerline.auth.model import Session, StartedSession, TokenPair

if TYPE_CHECKING:
    from ledgerline.db import Cursor

SESSION_TTL_DAYS = 30  # absolute: log in again after this, however active
REFRESH_TTL_DAYS = 14  # a refresh token's own life (the session's idle limit ends it far sooner)
REFRESH_PREFIX = "rt1_"
# A client that sends its refresh token twice at once (two tabs, a retry after a lost
# response) is not a thief: a second use this soon after the rotation, while the new
# refresh token is unused, is answered the same new pair. Later reuse, or reuse once the
# new token was used, is theft, and ends the session.
REUSE_GRACE_SECONDS = 10

Runner = Callable[[Callable[[Any], Any]], Any]


@dataclass(frozen=True)
class Client:
    """Where a request comes from (for sessions and audit rows)."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    country: str | None = None
    city: str | None = None

    @classmethod
    def from_request(cls, request: Any, *, placed: bool = True) -> Client:
        """``request.ip`` is the client's address as the Endpoint resolved it (trusted
        proxies only, ``ledgerline.auth.origin``); its place comes from the offline
        lookup, or from CloudFront's viewer headers only when the request came through it
        (``request.via_cloudfront``: any client can send them otherwise)."""
        if not placed:  # a route that records no place (refresh) loads no lookup
            return cls(ip=request.ip, user_agent=(request.user_agent or "")[:500] or None,
                       request_id=request.request_id)  # fmt: skip
        from ledgerline import geo  # deferred: only the routes that place a request load it

        place = geo.place_of(request.ip, request.headers or {}, trust_cloudfront=request.via_cloudfront)
        return cls(
            ip=request.ip,
            user_agent=(request.user_agent or "")[:500] or None,
            request_id=request.request_id,
            country=place.country,
            city=place.city,
        )

    def actor(self, user_id: UUID | None = None, role: str = "anonymous") -> Actor:
        return Actor(id=user_id, type=role, ip=self.ip, user_agent=self.user_agent, request_id=self.request_id)


def _default_runner() -> Runner:
    from ledgerline.db import transaction

    return transaction


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


# -- sessions ----------------------------------------------------------------------------


def start(cur: Cursor, user_id: UUID, role: str, client: Client, *, amr: list[str]) -> StartedSession:
    """Open a session for a proven login and sign its first access token; the token
    pair (without audit: the caller records how the login was proven)."""
    scope = second_factor.scope(role, amr)
    session_id, refresh = create_session(cur, user_id, client, amr=amr, scope=scope)
    access, expires_in = tokens.issue_access_token(user_id, role, session_id=session_id, amr=amr, scope=scope)
    return StartedSession(
        session_id=session_id,
        scope=scope,
        tokens=TokenPair(access_token=access, refresh_token=refresh, expires_in=expires_in),
    )


def create_session(
    cur: Cursor, user_id: UUID, client: Client, *, amr: list[str], scope: str | None = None
) -> tuple[UUID, str]:
    """Open a session and its first refresh token; return (session id, refresh token)."""
    cur.execute(
        """
        INSERT INTO sessions (user_id, amr, scope, device, ip, country, city, expires_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, now() + make_interval(days => %s))
        RETURNING id
        """,
        (user_id, amr, scope, client.user_agent, client.ip, client.country, client.city, SESSION_TTL_DAYS),
    )
    session_id = cur.fetchone()["id"]
    return session_id, _issue_refresh(cur, session_id)


def _issue_refresh(cur: Cursor, session_id: UUID) -> str:
    token = new_refresh_token()
    cur.execute(
        """
        INSERT INTO refresh_tokens (token_hash, session_id, expires_at)
        SELECT %s, s.id, LEAST(s.expires_at, now() + make_interval(days => %s)) FROM sessions s WHERE s.id = %s
        """,
        (digest(token), REFRESH_TTL_DAYS, session_id),
    )
    return token


def revoke_all(cur: Cursor, user_id: UUID, *, reason: str) -> int:
    """End every open session of a user; return how many."""
    cur.execute(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = %s WHERE user_id = %s AND revoked_at IS NULL",
        (reason, user_id),
    )
    return cur.rowcount


def _revoke_session(cur: Cursor, session_id: UUID, reason: str) -> bool:
    cur.execute(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = %s WHERE id = %s AND revoked_at IS NULL",
        (reason, session_id),
    )
    return cur.rowcount == 1


# -- login -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Account:
    id: UUID
    role: str
    status: str
    password_hash: str | None
    otp_enabled: bool
    email_verified: bool


def login(email: str, password: str, otp: str | None, client: Client, *, run: Runner | None = None) -> TokenPair:
    """Check credentials and open a session. The checks, in order:

    1. count the attempt per account (and OTP attempts) and read the throttle: these
       commit even when the login fails, so failing does not reset them;
    2. verify the password (argon2id, outside any transaction; an unknown email costs
       the same time as a wrong password and gets the same answer);
    3. the second factor when the account has one (admins must enrol one);
    4. open the session, audit, sign the access token — one transaction.
    """
    from ledgerline.auth import new_country  # deferred: only the login route needs it

    run = run or _default_runner()
    email_n = users_mod.normalise_email(email)
    subject = throttle.login_subject(email_n)

    def gate(cur: Cursor) -> tuple[list[ratelimits.Refusal], throttle.Gate, _Account | None]:
        cur.execute(
            """
            SELECT u.id, u.role, u.status, u.password_hash,
                   EXISTS (SELECT 1 FROM otp_credentials o WHERE o.user_id = u.id AND o.confirmed_at IS NOT NULL)
                     AS otp_enabled,
                   u.email_verified_at IS NOT NULL AS email_verified
              FROM users u WHERE u.email = %s AND u.role <> 'system'
            """,
            (email_n,),
        )
        row = cur.fetchone()
        account = _Account(**row) if row else None
        checks = ratelimits.account_check("login", subject.hex())
        if account and otp:
            checks += ratelimits.account_check("otp", str(account.id))
        refusals = ratelimits.hit(cur, checks)
        gate_state = throttle.login_gate(cur, subject)
        who = _actor(client, account)
        if refusals:
            first = [r for r in refusals if r.hits == r.check.limit.count + 1]
            for r in first:
                audit.record(cur, who, events.RATE_LIMITED, "rate_limit", r.check.key, metadata={"limit": r.check.name})
        elif gate_state.locked_until or gate_state.wait_seconds:
            reason = "locked" if gate_state.locked_until else "throttled"
            _audit_failure(cur, who, account, reason, gate_state.failures)
        return refusals, gate_state, account

    refusals, gate_state, account = run(gate)
    if refusals:
        raise ratelimits.refused(refusals)
    throttle.enforce_gate(gate_state)

    if not passwords.verify_password(account.password_hash if account else None, password):
        _fail(run, client, account, subject, "bad_credentials")
        raise errors.Unauthorized("the email or password is not correct")
    assert account is not None  # a dummy hash never verifies
    if account.status != "active":
        events.record_refusal(
            _actor(client, account), events.LOGIN_FAILED, "user", account.id,
            metadata={"reason": "suspended"}, run=run,
        )  # fmt: skip
        raise errors.Forbidden("this account is suspended; contact support")
    if not account.email_verified:
        # Said only to someone who proved the password: it tells a stranger nothing.
        events.record_refusal(
            _actor(client, account), events.LOGIN_FAILED, "user", account.id,
            metadata={"reason": "email_not_verified"}, run=run,
        )  # fmt: skip
        raise errors.EmailNotVerified(
            "confirm your e-mail address first: send the token from the e-mail we sent you to "
            "POST /v1/auth/verify-email (registering again sends a new one)"
        )

    # A country never seen for this account needs a second factor first (new_country).
    arrival = new_country.assess(run, account.id, client.country, client.city, otp_enabled=account.otp_enabled)
    if arrival is not None and arrival.stepped_up and not otp:
        raise new_country.demand(run, account.id, arrival, _actor(client, account))

    amr = ["pwd"]
    if account.otp_enabled:
        if not otp:
            raise errors.OtpRequired(
                "this account uses two-factor authentication: send otp, the 6-digit code from the "
                "authenticator app (or a recovery code)"
            )
        amr = ["pwd", "otp"]
    # Without a second factor an administrator's or auditor's session reaches only the
    # enrolment routes (second_factor), here and on every request.

    def succeed(cur: Cursor) -> TokenPair | None:
        from ledgerline.auth import otp as otp_mod

        who = _actor(client, account)
        if account.otp_enabled and not otp_mod.check_code(cur, account.id, otp or "", who):
            return None
        if not new_country.passed(cur, account.id, arrival, otp or ""):
            return None
        throttle.clear_login_failures(cur, subject)
        if account.password_hash and passwords.needs_rehash(account.password_hash):
            cur.execute(
                "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s",
                (passwords.hash_password(password), account.id),
            )
            audit.record(cur, who, events.USER_PASSWORD_REHASHED, "user", account.id)
        new_country.remember(cur, account.id, client.country, arrival, who)
        started = start(cur, account.id, account.role, client, amr=amr)
        audit.record(
            cur, who, events.LOGIN_SUCCEEDED, "session", started.session_id,
            metadata={"user_id": str(account.id), "amr": amr, "scope": started.scope},
        )  # fmt: skip
        return started.tokens

    result = run(succeed)
    if result is None:
        _fail(run, client, account, subject, "bad_otp")
        if arrival is not None and arrival.second_factor == "email_code":
            raise new_country.SecondFactorRequired(
                "the e-mailed code is not valid or has expired; log in without otp to have a new one sent",
                country=arrival.country,
                second_factor=arrival.second_factor,
            )
        raise errors.OtpRequired("the one-time password is not valid; use the current code or a recovery code")
    return result


def _actor(client: Client, account: _Account | None) -> Actor:
    if account is None:
        return client.actor()
    return client.actor(account.id, account.role)


def _audit_failure(cur: Cursor, who: Actor, account: _Account | None, reason: str, failures: int) -> None:
    audit.record(
        cur, who, events.LOGIN_FAILED, "user", account.id if account else None,
        metadata={"reason": reason, "consecutive_failures": failures},
    )  # fmt: skip


def _fail(run: Runner, client: Client, account: _Account | None, subject: bytes, reason: str) -> None:
    """Count the failure and audit it in a transaction of its own (it must survive)."""

    def work(cur: Cursor) -> None:
        failures, locked_now = throttle.record_login_failure(cur, subject)
        who = _actor(client, account)
        _audit_failure(cur, who, account, reason, failures)
        if reason == "bad_otp" and account is not None:
            audit.record(cur, who, events.OTP_FAILED, "user", account.id, metadata={"during": "login"})
        if locked_now:
            audit.record(
                cur, who, events.ACCOUNT_LOCKED, "user", account.id if account else None,
                metadata={"failures": failures, "locked_for_seconds": throttle.LOCK_SECONDS},
            )  # fmt: skip
            if account is not None:
                _notify_locked(cur, account.id)

    run(work)


def _notify_locked(cur: Cursor, user_id: UUID) -> None:
    from ledgerline import outbox

    outbox.enqueue(
        cur,
        "notifications",
        {
            "type": "auth.account_locked",
            "user_id": str(user_id),
            "message": "Sign-in to your account was locked after repeated failed attempts. "
            "If this was not you, reset your password; that also unlocks sign-in.",
        },
    )


# -- refresh -----------------------------------------------------------------------------


def refresh(token: str, client: Client, *, run: Runner | None = None) -> TokenPair:
    """Exchange a refresh token for a new pair.

    The same token again within ``REUSE_GRACE_SECONDS`` of its rotation, while the new
    refresh token is unused, answers the same pair again (a client's retry); any other
    reuse revokes the family. A session unused for ``settings().session_idle_minutes``
    ends here (PCI DSS 8.2.8): 401 ``session_idle``, audited.
    """
    run = run or _default_runner()
    if not isinstance(token, str) or not token.startswith(REFRESH_PREFIX) or len(token) > 200:
        raise errors.Unauthorized("the refresh token is not valid; log in again")

    def work(cur: Cursor) -> tuple[str, _Rotation | None]:
        cur.execute(
            """
            UPDATE refresh_tokens SET rotated_at = now()
             WHERE token_hash = %s AND rotated_at IS NULL AND expires_at > now()
            RETURNING session_id, rotated_at
            """,
            (digest(token),),
        )
        claimed = cur.fetchone()
        if claimed is None:
            return _presented_again(cur, token, client)
        session = _lock_session(cur, claimed["session_id"])
        if session["ended"] or session["status"] != "active":
            return "invalid", None
        if session["idle"]:
            _revoke_session(cur, session["id"], "idle")
            audit.record(
                cur, client.actor(session["user_id"], session["role"]), events.SESSION_IDLE_ENDED, "session",
                session["id"], metadata={"last_seen_at": session["last_seen_at"], "idle_minutes": _idle_minutes()},
            )  # fmt: skip
            return "idle", None
        key = bytes(session["rotation_key"]) if session["rotation_key"] else _new_rotation_key(cur, session["id"])
        successor = _successor(key, token)
        cur.execute(
            """
            INSERT INTO refresh_tokens (token_hash, session_id, expires_at)
            SELECT %s, s.id, LEAST(s.expires_at, now() + make_interval(days => %s)) FROM sessions s WHERE s.id = %s
            """,
            (digest(successor), REFRESH_TTL_DAYS, session["id"]),
        )
        # The scope follows the role the user has now, not the one the session began with.
        scope = second_factor.scope(session["role"], session["amr"])
        cur.execute(
            "UPDATE sessions SET last_seen_at = now(), ip = COALESCE(%s, ip), scope = %s WHERE id = %s",
            (client.ip, scope, session["id"]),
        )
        audit.record(
            cur, client.actor(session["user_id"], session["role"]), events.TOKEN_REFRESHED, "session", session["id"]
        )
        return "ok", _Rotation(key, successor, session, scope, claimed["rotated_at"])

    # Signed once the rows are committed and unlocked (a KMS call): a retry of the same
    # token waits for this rotation's transaction, never for its signature.
    outcome, rotation = run(work)
    if outcome == "reused":
        raise errors.Unauthorized("this refresh token was already used; the session has been ended, log in again")
    if outcome == "idle":
        raise errors.SessionIdle(
            f"the session was not used for more than {_idle_minutes()} minutes and has been ended; log in again"
        )
    if rotation is None:
        raise errors.Unauthorized("the refresh token is not valid or has expired; log in again")
    return rotation.pair(token)


@dataclass(frozen=True)
class _Rotation:
    """What a rotation decided, from which its pair is made (the same pair every time)."""

    key: bytes
    successor: str
    session: dict[str, Any]
    scope: str | None
    rotated_at: datetime

    def pair(self, token: str) -> TokenPair:
        """The access token of the rotation: issued at its time with a jti derived like the
        successor, so that RS256 signs it to the same bytes whenever it is asked for."""
        issued = int(self.rotated_at.timestamp())
        jti = str(UUID(bytes=_derive(self.key, b"jti", token)[:16], version=4))
        s = self.session
        access, ttl = tokens.issue_access_token(
            s["user_id"], s["role"], session_id=s["id"], amr=s["amr"], scope=self.scope, now=issued, jti=jti
        )
        expires_in = max(1, min(ttl, issued + ttl - int(time.time())))
        return TokenPair(access_token=access, refresh_token=self.successor, expires_in=expires_in)


def _presented_again(cur: Cursor, token: str, client: Client) -> tuple[str, _Rotation | None]:
    """A token that is not live: a retry within the grace gets its pair again; any other
    use of a rotated token is reuse, and ends the family; an unknown or expired one is
    just not valid."""
    cur.execute(
        """
        SELECT rt.session_id, rt.rotated_at, s.user_id, s.rotation_key, u.role,
               rt.rotated_at > now() - make_interval(secs => %s) AS within_grace
          FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id JOIN users u ON u.id = s.user_id
         WHERE rt.token_hash = %s
        """,
        (REUSE_GRACE_SECONDS, digest(token)),
    )
    old = cur.fetchone()
    if old is None or old["rotated_at"] is None:
        return "invalid", None
    if old["within_grace"] and old["rotation_key"] is not None:
        rotation = _replay(cur, token, old, client)
        if rotation is not None:
            return "ok", rotation
    revoked = _revoke_session(cur, old["session_id"], "refresh_token_reused")
    audit.record(
        cur, client.actor(old["user_id"], old["role"]), events.REFRESH_TOKEN_REUSED, "session", old["session_id"],
        metadata={"family_revoked": revoked, "rotated_at": old["rotated_at"], "within_grace": old["within_grace"]},
    )  # fmt: skip
    return "reused", None


def _replay(cur: Cursor, token: str, old: dict[str, Any], client: Client) -> _Rotation | None:
    """The rotation of ``token`` again, if its refresh token is still unused and the
    session alive; None otherwise (reuse)."""
    key = bytes(old["rotation_key"])
    successor = _successor(key, token)
    # Locks in a rotation's order (token row, then session): the successor's row is locked
    # first, so a racing use of it either finishes before this reads it or waits for this.
    cur.execute(
        "SELECT rotated_at FROM refresh_tokens WHERE token_hash = %s AND session_id = %s FOR UPDATE",
        (digest(successor), old["session_id"]),
    )
    row = cur.fetchone()
    if row is None or row["rotated_at"] is not None:
        return None
    session = _lock_session(cur, old["session_id"])
    if session["ended"] or session["status"] != "active" or session["idle"]:
        return None
    scope = second_factor.scope(session["role"], session["amr"])
    audit.record(
        cur, client.actor(session["user_id"], session["role"]), events.TOKEN_REFRESHED, "session", session["id"],
        metadata={"retry_within_grace": True},
    )  # fmt: skip
    return _Rotation(key, successor, session, scope, old["rotated_at"])


def _lock_session(cur: Cursor, session_id: UUID) -> dict[str, Any]:
    cur.execute(
        """
        SELECT s.id, s.user_id, s.amr, s.scope, s.rotation_key, s.last_seen_at, u.role, u.status,
               s.revoked_at IS NOT NULL OR s.expires_at <= now() AS ended,
               s.last_seen_at <= now() - make_interval(mins => %s) AS idle
          FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id = %s FOR UPDATE OF s
        """,
        (_idle_minutes(), session_id),
    )
    return dict(cur.fetchone())


def _idle_minutes() -> int:
    from ledgerline.config import settings

    return settings().session_idle_minutes


def _new_rotation_key(cur: Cursor, session_id: UUID) -> bytes:
    """The session's key for deriving successors, made at its first rotation (the caller
    holds the session's row lock)."""
    key = secrets.token_bytes(32)
    cur.execute("UPDATE sessions SET rotation_key = %s WHERE id = %s", (key, session_id))
    return key


def _derive(key: bytes, purpose: bytes, token: str) -> bytes:
    # Keyed by the session's key AND a server key the database does not hold: someone who
    # reads the sessions table and holds a retired token still cannot compute its successor.
    from ledgerline.crypto.blind import server_key

    session_key = hmac.new(server_key("refresh successors"), key, hashlib.sha256).digest()
    return hmac.new(session_key, purpose + b"\0" + token.encode(), hashlib.sha256).digest()


def _successor(key: bytes, token: str) -> str:
    """The refresh token that follows ``token``: derived, not stored, so that a retry can be
    answered the same one while only digests are kept. Without the session's key (the
    database's), the server key (Secrets Manager's) and ``token`` (the client's) it cannot
    be computed."""
    return REFRESH_PREFIX + base64.urlsafe_b64encode(_derive(key, b"refresh", token)).rstrip(b"=").decode()


# -- logout and session management ---------------------------------------------------------


def logout(cur: Cursor, principal: Any, actor: Actor) -> None:
    """Revoke the access token's jti and its session (the whole refresh family)."""
    claims = principal.claims
    cur.execute(
        """
        INSERT INTO revoked_tokens (jti, user_id, expires_at, reason)
        VALUES (%s, %s, to_timestamp(%s), 'logout') ON CONFLICT (jti) DO NOTHING
        """,
        (UUID(str(claims["jti"])), principal.id, int(claims["exp"])),
    )
    session_id = UUID(str(claims["sid"])) if claims.get("sid") else None
    if session_id:
        _revoke_session(cur, session_id, "logout")
    audit.record(cur, actor, events.LOGOUT, "session", session_id, metadata={"jti": str(claims["jti"])})


def list_sessions(
    cur: Cursor, principal: Any, *, limit: int | None = None, cursor: str | None = None
) -> tuple[list[Session], str | None]:
    """The caller's open sessions, newest first, a page at a time; ``current`` marks the
    one of the access token that asks."""
    limit = pagination.check_limit(limit)
    after = pagination.decode(cursor)
    params: dict[str, Any] = {"user": principal.id, "limit": limit + 1}
    where = "user_id = %(user)s AND revoked_at IS NULL AND expires_at > now()"
    if after:
        where += " AND (created_at, id) < (%(t)s, %(id)s)"
        params.update(t=after[0], id=after[1])
    cur.execute(
        f"""
        SELECT id, device, host(ip) AS ip, country, city, last_seen_at, created_at FROM sessions
         WHERE {where} ORDER BY created_at DESC, id DESC LIMIT %(limit)s
        """,
        params,
    )
    rows, next_cursor = pagination.page(cur.fetchall(), limit)
    current = str(principal.claims.get("sid") or "")
    return [Session.from_row(r, current=str(r["id"]) == current) for r in rows], next_cursor


def revoke_session(cur: Cursor, principal: Any, session_id: UUID, actor: Actor) -> None:
    """End one of the caller's sessions; another user's session is 404, never touched."""
    cur.execute("SELECT revoked_at FROM sessions WHERE id = %s AND user_id = %s FOR UPDATE", (session_id, principal.id))
    row = cur.fetchone()
    if row is None:
        raise errors.NotFound("no such session")
    if row["revoked_at"] is None:
        _revoke_session(cur, session_id, "revoked_by_user")
        audit.record(cur, actor, events.SESSION_REVOKED, "session", session_id)


def revoke_all_sessions(cur: Cursor, principal: Any, actor: Actor) -> int:
    """End every session of the caller, this one included."""
    count = revoke_all(cur, principal.id, reason="revoked_by_user")
    claims = principal.claims
    cur.execute(
        """
        INSERT INTO revoked_tokens (jti, user_id, expires_at, reason)
        VALUES (%s, %s, to_timestamp(%s), 'revoke_all') ON CONFLICT (jti) DO NOTHING
        """,
        (UUID(str(claims["jti"])), principal.id, int(claims["exp"])),
    )
    audit.record(cur, actor, events.SESSIONS_REVOKED, "user", principal.id, metadata={"sessions": count})
    return count
