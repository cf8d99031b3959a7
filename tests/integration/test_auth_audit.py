"""Every identity and access event is audited: one scenario triggers each event of
``ledgerline.auth.events.ALL`` and the audit trail must hold a row for each."""

from __future__ import annotations

import uuid

import pyotp
import pytest
from argon2 import PasswordHasher

from ledgerline import config, errors, routes
from ledgerline.audit import Actor
from ledgerline.auth import (
    admission,
    apikeys,
    events,
    otp,
    resets,
    sessions,
    throttle,
    tokens,
    users,
    verification,
)
from ledgerline.caller import Principal, Request
from ledgerline.db import transaction

pytestmark = pytest.mark.usefixtures("database_url", "aws_endpoint")

PASSWORD = "correct horse battery staple 9"
CLIENT = sessions.Client(ip="192.0.2.44", user_agent="audit-test", request_id="audit-1")
SYSTEM = Actor.system("tests")


def create(role="user"):
    email = f"audit-{role}-{uuid.uuid4().hex[:8]}@example.test"
    return transaction(
        lambda cur: users.create_user(cur, email=email, password=PASSWORD, full_name="A", role=role, actor=SYSTEM)
    )


def mailed_reset_token(email):
    """A reset request and the notification worker's preparation of its mail."""
    from ledgerline import notifications

    def request(cur):
        resets.request_reset(cur, email, CLIENT.actor())
        cur.execute("SELECT payload->>'reset_id' AS reset_id FROM outbox ORDER BY outbox.id DESC LIMIT 1")
        return cur.fetchone()["reset_id"]

    prepared = notifications.prepare({"type": resets.EVENT, "reset_id": transaction(request)}, run=transaction)
    return prepared and prepared["token"]


def registration_mails(email):
    """What the notification worker makes of the mails registrations of ``email`` queued."""
    from ledgerline import notifications

    def queued(cur):
        cur.execute(
            """
            SELECT o.payload FROM outbox o JOIN email_verifications v ON v.id::text = o.payload->>'verification_id'
              JOIN users u ON u.id = v.user_id
             WHERE u.email = %s ORDER BY o.id
            """,
            (email,),
        )
        return [r["payload"] for r in cur.fetchall()]

    return [notifications.prepare(p, run=transaction) for p in transaction(queued)]


def session_claims(user_id, role):
    """The verified claims of a new session of the user (a password login)."""
    started = transaction(lambda cur: sessions.start(cur, user_id, role, CLIENT, amr=["pwd"]))
    return tokens.verify_access_token(started.access_token)


def expect(exc_type, fn, *args):
    with pytest.raises(exc_type):
        fn(*args)


def test_every_auth_event_is_written_to_the_audit_trail(owner_conn, monkeypatch):
    with owner_conn.cursor() as cur:
        cur.execute("SELECT clock_timestamp()")
        started = cur.fetchone()[0]

    # user.created / user.registered
    admin = create("admin")
    alice = create()
    # ... auth.registration_address_taken, email_verification_sent / skipped / failed, user.email_verified
    registering = f"reg-{uuid.uuid4().hex[:8]}@example.test"
    for _ in range(2):  # the second finds the address taken
        transaction(
            lambda cur: users.register(cur, email=registering, password=PASSWORD, full_name="R", actor=CLIENT.actor())
        )
    sent, skipped = registration_mails(registering)  # the notice: the verification went out moments ago
    assert skipped is None
    verification.verify(sent["token"], CLIENT.actor())
    expect(errors.BadRequest, verification.verify, sent["token"], CLIENT.actor())
    # user.password_rehashed: a hash made with weaker parameters is upgraded at login
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE users SET password_hash = %s WHERE id = %s", (weak, alice.id))
    # auth.login_succeeded / token_refreshed / refresh_token_reused / logout
    first = sessions.login(alice.email, PASSWORD, None, CLIENT)
    second = sessions.refresh(first.refresh_token, CLIENT)
    with owner_conn.cursor() as cur:  # past the grace that answers a retry the same pair
        cur.execute(
            "UPDATE refresh_tokens SET rotated_at = rotated_at - interval '1 minute' WHERE token_hash = %s",
            (sessions.digest(first.refresh_token),),
        )
    expect(errors.Unauthorized, sessions.refresh, first.refresh_token, CLIENT)
    # auth.session_idle_ended: a session unused longer than the idle limit ends at refresh
    idle = sessions.login(alice.email, PASSWORD, None, CLIENT)
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE sessions SET last_seen_at = now() - interval '1 hour' WHERE id ="
            " (SELECT session_id FROM refresh_tokens WHERE token_hash = %s)",
            (sessions.digest(idle.refresh_token),),
        )
    expect(errors.SessionIdle, sessions.refresh, idle.refresh_token, CLIENT)
    third = sessions.login(alice.email, PASSWORD, None, CLIENT)
    from ledgerline.auth import principal as principal_mod
    from ledgerline.auth import tokens

    me = principal_mod.authenticate(tokens.verify_access_token(third.access_token))
    actor = CLIENT.actor(alice.id, "user")
    transaction(lambda cur: sessions.logout(cur, me, actor))
    # auth.session_revoked / sessions_revoked
    fourth = sessions.login(alice.email, PASSWORD, None, CLIENT)
    me = principal_mod.authenticate(tokens.verify_access_token(fourth.access_token))
    transaction(lambda cur: sessions.revoke_session(cur, me, uuid.UUID(me.claims["sid"]), actor))
    fifth = sessions.login(alice.email, PASSWORD, None, CLIENT)
    me = principal_mod.authenticate(tokens.verify_access_token(fifth.access_token))
    transaction(lambda cur: sessions.revoke_all_sessions(cur, me, actor))
    assert second  # used above
    # auth.login_failed / account_locked
    for attempt in range(throttle.LOCK_AFTER):
        expect(errors.Unauthorized, sessions.login, alice.email, f"wrong {attempt} password", None, CLIENT)
        with owner_conn.cursor() as cur:
            cur.execute(
                "UPDATE login_throttle SET last_failed_at = now() - interval '5 minutes' WHERE subject = %s",
                (throttle.login_subject(alice.email),),
            )
    # auth.password_reset_requested / sent / skipped / completed / failed (the reset also unlocks)
    token = mailed_reset_token(alice.email)
    assert mailed_reset_token(f"nobody-{uuid.uuid4().hex[:8]}@example.test") is None
    resets.confirm_reset(token, "a new and long passphrase", CLIENT.actor())
    expect(errors.BadRequest, resets.confirm_reset, token, "a new and long passphrase", CLIENT.actor())
    # auth.otp_setup_started / otp_enabled / otp_failed / recovery_code_used
    bob = create()
    bob_actor = Actor(id=bob.id, type="user")
    setup = transaction(lambda cur: otp.setup(cur, bob.id, bob.email, bob_actor))
    transaction(lambda cur: otp.verify_enrolment(cur, bob.id, pyotp.TOTP(setup.secret).now(), bob_actor))
    expect(errors.OtpRequired, sessions.login, bob.email, PASSWORD, "12345x", CLIENT)
    sessions.login(bob.email, PASSWORD, setup.recovery_codes[0], CLIENT)
    # user.role_changed / suspended / reactivated
    admin_actor = Actor(id=admin.id, type="admin")
    transaction(lambda cur: users.update_user(cur, bob.id, role="merchant", actor=admin_actor))
    transaction(lambda cur: users.update_user(cur, bob.id, status="suspended", actor=admin_actor))
    transaction(lambda cur: users.update_user(cur, bob.id, status="active", actor=admin_actor))
    # api_key.created / revoked
    merchant = Principal(id=bob.id, role="merchant")
    key = transaction(lambda cur: apikeys.create(cur, merchant, name="k", scopes=["accounts:read"], actor=bob_actor))
    transaction(lambda cur: apikeys.revoke(cur, merchant, key.id, bob_actor))
    # auth.rate_limited / velocity_blocked
    monkeypatch.setenv("LEDGERLINE_RATE_LIMITS", "default=1/minute")
    monkeypatch.setenv("LEDGERLINE_VELOCITY", "1/60s")
    config.settings.cache_clear()
    try:
        claims = session_claims(bob.id, "merchant")
        request = Request("r", f"192.0.2.{uuid.uuid4().int % 200}", "ua", {}, None)
        plain = routes.Route("GET", "/v1/x", "tests.x", routes.Access.USER, "x")
        moving = routes.Route("POST", "/v1/t", "tests.t", routes.Access.USER, "t", money=True,
                              limit=routes.RateLimit.MONEY, velocity=True)  # fmt: skip
        admission.admit(plain, request, claims)
        expect(errors.RateLimited, admission.admit, plain, request, claims)
        monkeypatch.setenv("LEDGERLINE_RATE_LIMITS", "default=off;money=off")
        config.settings.cache_clear()
        admission.admit(moving, request, claims)
        expect(errors.RateLimited, admission.admit, moving, request, claims)
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()

    with owner_conn.cursor() as cur:
        cur.execute("SELECT DISTINCT action, category FROM audit_log WHERE occurred_at >= %s", (started,))
        seen = dict(cur.fetchall())
    missing = sorted(set(events.ALL) - set(seen))
    assert missing == [], f"auth events without an audit row: {missing}"
    assert {seen[a] for a in events.ALL} == {"auth"}
    assert len(events.ALL) == 33
