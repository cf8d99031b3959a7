"""Identity flows on the real PostgreSQL, with KMS (moto) signing tokens and wrapping
field keys. Given / When / Then, one behaviour per test."""

from __future__ import annotations

import threading
import uuid

import psycopg2.extras
import pyotp
import pytest

from ledgerline import errors
from ledgerline.audit import Actor
from ledgerline.auth import apikeys, events, otp, principal, ratelimits, resets, sessions, throttle, tokens, users
from ledgerline.caller import Principal
from ledgerline.config import Limit
from ledgerline.db import transaction

pytestmark = pytest.mark.usefixtures("database_url", "aws_endpoint")

PASSWORD = "correct horse battery staple 9"
SYSTEM = Actor.system("tests")
CLIENT = sessions.Client(ip="198.51.100.7", user_agent="pytest", request_id="req-1")


def new_user(role="user", password=PASSWORD, **kw):
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.test"
    user = transaction(
        lambda cur: users.create_user(
            cur, email=email, password=password, full_name=f"Test {role}", role=role, actor=SYSTEM, **kw
        )
    )
    return user


def audit_rows(owner_conn, action, resource_id=None):
    with owner_conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        if resource_id is None:
            cur.execute("SELECT action, actor_id, resource_id, metadata FROM audit_log WHERE action = %s", (action,))
        else:
            cur.execute(
                "SELECT action, actor_id, resource_id, metadata FROM audit_log WHERE action = %s AND resource_id = %s",
                (action, str(resource_id)),
            )
        return cur.fetchall()


def age_failures(owner_conn, email, seconds=120):
    """Time passes for the throttle of ``email`` (instead of sleeping through the delays)."""
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE login_throttle SET last_failed_at = last_failed_at - make_interval(secs => %s) WHERE subject = %s",
            (seconds, throttle.login_subject(email)),
        )


def claims_of(result):
    return tokens.verify_access_token(result.access_token)


def session_claims(user, role_claim=None):
    """The claims of an access token of a new session of ``user`` (the token may claim
    another role than the user has: a stale or forged claim)."""
    session_id, _ = transaction(lambda cur: sessions.create_session(cur, user.id, CLIENT, amr=["pwd"]))
    token, _ = tokens.issue_access_token(user.id, role_claim or user.role, session_id=session_id)
    return tokens.verify_access_token(token)


def mailed_reset_token(email):
    """Ask for a reset of ``email`` and let the notification worker prepare the mail:
    the token it would send (None: it sends nothing)."""
    from ledgerline import notifications

    reset_id = transaction(lambda cur: _request_and_find(cur, email))
    prepared = notifications.prepare({"type": resets.EVENT, "reset_id": str(reset_id)}, run=transaction)
    return None if prepared is None else prepared["token"]


def _request_and_find(cur, email):
    resets.request_reset(cur, email, SYSTEM)
    cur.execute("SELECT payload->>'reset_id' AS reset_id FROM outbox ORDER BY outbox.id DESC LIMIT 1")
    return cur.fetchone()["reset_id"]


# -- registration ---------------------------------------------------------------------------


def test_registration_normalises_the_email_and_a_second_one_changes_nothing(owner_conn):
    email = f"  Ada.{uuid.uuid4().hex[:8]}@Example.TEST "
    actor = Actor(id=None, type="anonymous", ip="203.0.113.9")

    transaction(lambda cur: users.register(cur, email=email, password=PASSWORD, full_name="Ada", actor=actor))
    [user] = transaction(lambda cur: users.list_users(cur, email=email.strip().lower()))[0]
    # The same address again, differently written: no error, no second account, no change.
    transaction(lambda cur: users.register(cur, email=email.upper(), password="another passphrase 77", full_name="A",
                                           actor=actor))  # fmt: skip

    assert user.email == email.strip().lower() and user.role == "user"
    assert transaction(lambda cur: users.list_users(cur, email=email.strip())) == ([user], None)
    [row] = audit_rows(owner_conn, events.USER_REGISTERED, user.id)
    assert row["actor_id"] == user.id
    [taken] = audit_rows(owner_conn, events.REGISTRATION_ADDRESS_TAKEN, user.id)
    assert taken["actor_id"] is None
    # Unverified, the account cannot log in even with its password; verified, it can.
    with pytest.raises(errors.EmailNotVerified):
        sessions.login(email, PASSWORD, None, CLIENT)
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE users SET email_verified_at = now() WHERE id = %s", (user.id,))
    assert sessions.login(email, PASSWORD, None, CLIENT).access_token


def test_a_phone_number_is_stored_encrypted_with_a_blind_index_never_in_plaintext(owner_conn):
    from ledgerline import crypto

    user = new_user(phone="+234 803 123 4567")

    with owner_conn.cursor() as cur:
        cur.execute("SELECT * FROM users WHERE id = %s", (user.id,))
        row = cur.fetchone()
    stored = b"".join(bytes(v) if isinstance(v, memoryview) else str(v).encode() for v in row if v is not None)
    assert b"8031234567" not in stored
    assert user.phone == "****4567"
    assert transaction(lambda cur: users.phone_of(cur, user.id)) == "+2348031234567"
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT id FROM users WHERE phone_blind_index = %s", (crypto.blind_index("+2348031234567", kind="phone"),)
        )
        # Other tests in this run may register the same number: the lookup finds them all.
        assert user.id in {row[0] for row in cur.fetchall()}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("password", "password1"),
        ("password", "short"),
        ("full_name", "   "),
        ("phone", "0803"),
    ],
)
def test_registration_refuses_bad_input_with_the_field_named(field, value):
    body = {"email": f"x{uuid.uuid4().hex[:6]}@example.test", "password": PASSWORD, "full_name": "X", "phone": None}
    body[field] = value

    with pytest.raises(errors.ValidationFailed) as exc:
        transaction(lambda cur: users.register(cur, **body, actor=SYSTEM))

    assert exc.value.errors[0].field == field


# -- login, throttling, lockout ---------------------------------------------------------------


def test_login_opens_a_session_and_signs_a_token_naming_it(owner_conn):
    user = new_user()

    result = sessions.login(user.email.upper(), PASSWORD, None, CLIENT)

    claims = claims_of(result)
    assert result.token_type == "Bearer" and result.expires_in == 900
    assert claims["sub"] == str(user.id) and claims["amr"] == ["pwd"] and "scope" not in claims
    assert result.refresh_token.startswith("rt1_")
    [row] = audit_rows(owner_conn, events.LOGIN_SUCCEEDED, claims["sid"])
    assert row["actor_id"] == user.id


def test_an_unknown_email_and_a_wrong_password_get_the_same_answer(owner_conn):
    user = new_user()
    answers = []
    for email in (user.email, f"nobody-{uuid.uuid4().hex[:8]}@example.test"):
        with pytest.raises(errors.DomainError) as exc:
            sessions.login(email, "wrong password 123", None, CLIENT)
        answers.append((type(exc.value), exc.value.status, exc.value.detail))

    assert answers[0] == answers[1] == (errors.Unauthorized, 401, "the email or password is not correct")


def test_failures_slow_down_progressively_then_lock_and_the_lock_ends_by_itself(owner_conn):
    user = new_user()
    email = user.email
    for attempt in range(1, throttle.LOCK_AFTER):
        with pytest.raises(errors.Unauthorized):
            sessions.login(email, f"wrong-{attempt}-password", None, CLIENT)
        if attempt >= throttle.FREE_FAILURES:
            # Trying again at once is refused without even checking the password.
            with pytest.raises(errors.RateLimited) as exc:
                sessions.login(email, PASSWORD, None, CLIENT)
            assert 1 <= exc.value.retry_after <= throttle.delay_after(attempt)
        age_failures(owner_conn, email)

    with pytest.raises(errors.Unauthorized):
        sessions.login(email, "the tenth wrong one", None, CLIENT)
    with pytest.raises(errors.AccountLocked) as locked:
        sessions.login(email, PASSWORD, None, CLIENT)  # even the right password

    assert locked.value.status == 423 and locked.value.headers["Retry-After"] == str(throttle.LOCK_SECONDS)
    assert len(audit_rows(owner_conn, events.ACCOUNT_LOCKED, user.id)) == 1
    with owner_conn.cursor() as cur:
        cur.execute("SELECT payload FROM outbox WHERE payload->>'user_id' = %s", (str(user.id),))
        assert cur.fetchone()[0]["type"] == "auth.account_locked"
        # 30 minutes pass.
        cur.execute(
            "UPDATE login_throttle SET locked_until = now() - interval '1 second' WHERE subject = %s",
            (throttle.login_subject(email),),
        )
    assert sessions.login(email, PASSWORD, None, CLIENT).access_token


def test_unknown_emails_are_locked_like_real_ones_so_the_lock_reveals_nothing(owner_conn):
    email = f"ghost-{uuid.uuid4().hex[:8]}@example.test"
    for attempt in range(throttle.LOCK_AFTER):
        with pytest.raises(errors.Unauthorized):
            sessions.login(email, f"guess-{attempt}-password", None, CLIENT)
        age_failures(owner_conn, email)

    with pytest.raises(errors.AccountLocked):
        sessions.login(email, PASSWORD, None, CLIENT)


def test_a_password_reset_by_email_lifts_the_lock_and_ends_every_session(owner_conn):
    user = new_user()
    email = user.email
    first = sessions.login(email, PASSWORD, None, CLIENT)
    for attempt in range(throttle.LOCK_AFTER):
        with pytest.raises(errors.Unauthorized):
            sessions.login(email, f"wrong-{attempt}-password", None, CLIENT)
        age_failures(owner_conn, email)
    with pytest.raises(errors.AccountLocked):
        sessions.login(email, PASSWORD, None, CLIENT)

    token = mailed_reset_token(email)
    resets.confirm_reset(token, "a brand new passphrase 7", SYSTEM)

    assert sessions.login(email, "a brand new passphrase 7", None, CLIENT).access_token
    with pytest.raises(errors.Unauthorized):  # the old password is gone
        sessions.login(email, PASSWORD, None, CLIENT)
    with pytest.raises(errors.Unauthorized):  # the session from before the reset ended
        principal.authenticate(claims_of(first))
    with pytest.raises(errors.BadRequest):  # the token works once
        resets.confirm_reset(token, "another passphrase 8", SYSTEM)
    assert audit_rows(owner_conn, events.PASSWORD_RESET_COMPLETED, user.id)


def test_a_reset_request_for_an_unknown_email_looks_the_same_and_sends_nothing(owner_conn):
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.test"

    assert mailed_reset_token(email) is None

    [row] = [r for r in audit_rows(owner_conn, events.PASSWORD_RESET_SKIPPED) if r["resource_id"] is None][-1:]
    assert row["metadata"]["reason"] == "unknown"


def test_a_reset_request_writes_the_same_rows_for_known_and_unknown_addresses(owner_conn):
    known = new_user().email
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.test"

    def rows_written_by_a_request(email):
        counts = {}
        with owner_conn.cursor() as cur:
            for table in ("password_resets", "outbox", "audit_log"):
                cur.execute(f"SELECT count(*) FROM {table}")
                counts[table] = cur.fetchone()[0]
        transaction(lambda cur: resets.request_reset(cur, email, SYSTEM))
        with owner_conn.cursor() as cur:
            for table in counts:
                cur.execute(f"SELECT count(*) FROM {table}")
                counts[table] = cur.fetchone()[0] - counts[table]
        return counts

    assert (
        rows_written_by_a_request(known)
        == rows_written_by_a_request(unknown)
        == {
            "password_resets": 1,
            "outbox": 1,
            "audit_log": 1,
        }
    )


def test_no_reset_token_is_ever_in_the_outbox_and_only_the_newest_mailed_token_works(owner_conn):
    user = new_user()

    first = mailed_reset_token(user.email)
    with owner_conn.cursor() as cur:
        cur.execute("SELECT payload FROM outbox WHERE payload->>'type' = %s", (resets.EVENT,))
        payloads = [r[0] for r in cur.fetchall()]
    # a redelivery of the same message mints a fresh token; the first one dies
    with owner_conn.cursor() as cur:
        cur.execute("SELECT id FROM password_resets WHERE user_id = %s", (user.id,))
        [(reset_id,)] = cur.fetchall()
    from ledgerline import notifications

    again = notifications.prepare({"type": resets.EVENT, "reset_id": str(reset_id)}, run=transaction)["token"]

    assert payloads and all(set(p) == {"type", "reset_id"} for p in payloads)
    assert first.startswith(resets.TOKEN_PREFIX) and again != first
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM outbox WHERE payload::text LIKE %s", (f"%{resets.TOKEN_PREFIX}%",))
        assert cur.fetchone()[0] == 0
    with pytest.raises(errors.BadRequest):
        resets.confirm_reset(first, "a brand new passphrase 7", SYSTEM)
    resets.confirm_reset(again, "a brand new passphrase 7", SYSTEM)


def test_a_second_reset_within_a_minute_is_not_mailed(owner_conn):
    user = new_user()

    assert mailed_reset_token(user.email) is not None
    assert mailed_reset_token(user.email) is None
    [row] = audit_rows(owner_conn, events.PASSWORD_RESET_SKIPPED, user.id)
    assert row["metadata"]["reason"] == "recent"


# -- refresh tokens ----------------------------------------------------------------------------


def test_refresh_rotates_and_a_reused_token_revokes_the_whole_family(owner_conn):
    user = new_user()
    first = sessions.login(user.email, PASSWORD, None, CLIENT)
    second = sessions.refresh(first.refresh_token, CLIENT)
    assert second.refresh_token != first.refresh_token
    assert principal.authenticate(claims_of(second)).id == user.id
    with owner_conn.cursor() as cur:  # the thief comes later than any honest retry would
        cur.execute(
            "UPDATE refresh_tokens SET rotated_at = rotated_at - interval '1 minute' WHERE session_id = %s",
            (claims_of(first)["sid"],),
        )

    with pytest.raises(errors.Unauthorized, match="already used"):
        sessions.refresh(first.refresh_token, CLIENT)  # the stolen copy

    with pytest.raises(errors.Unauthorized):
        sessions.refresh(second.refresh_token, CLIENT)  # the family is gone
    with pytest.raises(errors.Unauthorized):
        principal.authenticate(claims_of(second))  # and its access tokens
    assert audit_rows(owner_conn, events.REFRESH_TOKEN_REUSED, claims_of(first)["sid"])


def test_two_concurrent_refreshes_with_one_token_rotate_it_once():
    # The grace answers both the same pair (test_refresh_grace): one rotation, not two.
    user = new_user()
    token = sessions.login(user.email, PASSWORD, None, CLIENT).refresh_token
    outcomes = []

    def use():
        try:
            outcomes.append(sessions.refresh(token, CLIENT).refresh_token)
        except errors.Unauthorized:
            outcomes.append("refused")

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(outcomes) == 2 and outcomes[0] == outcomes[1] != "refused"


def test_ten_parallel_refreshes_with_one_token_leave_the_one_new_token_alive():
    user = new_user()
    token = sessions.login(user.email, PASSWORD, None, CLIENT).refresh_token
    won, refused = [], []
    barrier = threading.Barrier(10)

    def use():
        barrier.wait()
        try:
            won.append(sessions.refresh(token, CLIENT))
        except errors.Unauthorized as err:
            refused.append(err.detail)

    threads = [threading.Thread(target=use) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(won) == 10 and refused == []
    assert len({pair.refresh_token for pair in won}) == 1 and len({pair.access_token for pair in won}) == 1
    assert principal.authenticate(claims_of(won[0])).id == user.id
    assert sessions.refresh(won[0].refresh_token, CLIENT).access_token


def test_garbage_and_unknown_refresh_tokens_are_refused():
    for token in ("", "nope", "rt1_" + "A" * 43):
        with pytest.raises(errors.Unauthorized):
            sessions.refresh(token, CLIENT)


# -- principal checks ---------------------------------------------------------------------------


def test_the_role_comes_from_the_database_not_the_token():
    user = new_user()

    assert principal.authenticate(session_claims(user, role_claim="admin")).role == "user"


def test_an_access_token_without_a_session_is_refused():
    user = new_user()
    token, _ = tokens.issue_access_token(user.id, "user")

    with pytest.raises(errors.Unauthorized):
        principal.authenticate(tokens.verify_access_token(token))


def test_a_suspended_users_tokens_stop_at_once_and_work_again_after_reactivation(owner_conn):
    admin = new_user("admin")
    user = new_user()
    claims = session_claims(user)
    session = sessions.login(user.email, PASSWORD, None, CLIENT)
    admin_actor = Actor(id=admin.id, type="admin")

    transaction(lambda cur: users.update_user(cur, user.id, status="suspended", actor=admin_actor))

    with pytest.raises(errors.Unauthorized):
        principal.authenticate(claims)
    with pytest.raises(errors.Forbidden):
        sessions.login(user.email, PASSWORD, None, CLIENT)
    transaction(lambda cur: users.update_user(cur, user.id, status="active", actor=admin_actor))
    with pytest.raises(errors.Unauthorized):  # sessions ended by the suspension stay ended
        principal.authenticate(claims)
    with pytest.raises(errors.Unauthorized):
        principal.authenticate(claims_of(session))
    assert principal.authenticate(claims_of(sessions.login(user.email, PASSWORD, None, CLIENT))).id == user.id
    [row] = audit_rows(owner_conn, events.USER_SUSPENDED, user.id)
    assert row["actor_id"] == admin.id


def test_role_changes_are_audited_with_before_and_after_and_admins_cannot_change_themselves(owner_conn):
    admin = new_user("admin")
    user = new_user()
    actor = Actor(id=admin.id, type="admin")

    updated = transaction(lambda cur: users.update_user(cur, user.id, role="merchant", actor=actor))

    assert updated.role == "merchant"
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT payload_before, payload_after FROM audit_log WHERE action = %s AND resource_id = %s",
            (events.USER_ROLE_CHANGED, str(user.id)),
        )
        assert cur.fetchone() == ({"role": "user"}, {"role": "merchant"})
    with pytest.raises(errors.Forbidden):
        transaction(lambda cur: users.update_user(cur, admin.id, role="user", actor=actor))


def test_logout_revokes_the_jti_and_the_session_family():
    user = new_user()
    result = sessions.login(user.email, PASSWORD, None, CLIENT)
    claims = claims_of(result)
    me = principal.authenticate(claims)

    transaction(lambda cur: sessions.logout(cur, me, CLIENT.actor(user.id, "user")))

    with pytest.raises(errors.Unauthorized):
        principal.authenticate(claims)
    with pytest.raises(errors.Unauthorized):
        sessions.refresh(result.refresh_token, CLIENT)


def test_a_token_naming_a_session_that_does_not_exist_is_refused():
    user = new_user()
    token, _ = tokens.issue_access_token(user.id, "user", session_id=uuid.uuid4())

    with pytest.raises(errors.Unauthorized):
        principal.authenticate(tokens.verify_access_token(token))


# -- two-factor -----------------------------------------------------------------------------------


def enrol(user):
    actor = Actor(id=user.id, type=user.role)
    setup = transaction(lambda cur: otp.setup(cur, user.id, user.email, actor))
    code = pyotp.TOTP(setup.secret).now()
    assert transaction(lambda cur: otp.verify_enrolment(cur, user.id, code, actor)) is True
    with_last_step_in_past(user.id)
    return setup


def with_last_step_in_past(user_id):
    """Enrolment spent the current code; let the next check use it again (tests only)."""

    def work(cur):
        cur.execute("UPDATE otp_credentials SET last_step = last_step - 2 WHERE user_id = %s", (user_id,))

    transaction(work)


def test_the_totp_secret_is_stored_encrypted(owner_conn):
    user = new_user()
    setup = enrol(user)

    with owner_conn.cursor() as cur:
        cur.execute("SELECT secret, secret_encrypted FROM otp_credentials WHERE user_id = %s", (user.id,))
        secret, encrypted = cur.fetchone()
    assert encrypted and setup.secret.encode() not in bytes(secret)
    assert setup.otpauth_uri.startswith("otpauth://totp/Ledgerline:")


def test_with_2fa_login_needs_the_code_refuses_a_wrong_one_and_a_replayed_one(owner_conn):
    user = new_user()
    setup = enrol(user)
    code = pyotp.TOTP(setup.secret).now()

    with pytest.raises(errors.OtpRequired):
        sessions.login(user.email, PASSWORD, None, CLIENT)
    with pytest.raises(errors.OtpRequired, match="not valid"):
        sessions.login(user.email, PASSWORD, "000000" if code != "000000" else "111111", CLIENT)
    result = sessions.login(user.email, PASSWORD, code, CLIENT)
    assert claims_of(result)["amr"] == ["pwd", "otp"]
    age_failures(owner_conn, user.email)
    with pytest.raises(errors.OtpRequired):
        sessions.login(user.email, PASSWORD, code, CLIENT)  # the same code again
    assert audit_rows(owner_conn, events.OTP_FAILED, user.id)


def test_a_recovery_code_works_once(owner_conn):
    user = new_user()
    setup = enrol(user)
    code = setup.recovery_codes[3]

    assert sessions.login(user.email, PASSWORD, code.lower(), CLIENT).access_token
    with pytest.raises(errors.OtpRequired):
        sessions.login(user.email, PASSWORD, code, CLIENT)
    [row] = audit_rows(owner_conn, events.RECOVERY_CODE_USED, user.id)
    assert row["metadata"]["remaining"] == otp.RECOVERY_CODES - 1


def test_an_admin_without_2fa_gets_a_token_that_only_reaches_enrolment():
    admin = new_user("admin")

    result = sessions.login(admin.email, PASSWORD, None, CLIENT)

    assert claims_of(result)["scope"] == tokens.SCOPE_OTP_ENROLMENT
    enrol(admin)
    with pytest.raises(errors.OtpRequired):
        sessions.login(admin.email, PASSWORD, None, CLIENT)


# -- rate limits ------------------------------------------------------------------------------------


def test_concurrent_hits_on_one_key_admit_exactly_the_limit():
    key = f"test:{uuid.uuid4()}"
    check = ratelimits.Check(key, Limit(7, 60), "test")
    refused = []
    barrier = threading.Barrier(5)

    def burst():
        barrier.wait()
        for _ in range(4):
            refused.extend(transaction(lambda cur: ratelimits.hit(cur, [check])))

    threads = [threading.Thread(target=burst) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(refused) == 20 - 7
    # Sliding windows: the 7 weigh fully until the window ends, then fade (60 + 60/7 s).
    assert all(1 <= r.retry_after <= 60 + 60 // 7 + 1 for r in refused)


def test_a_window_starts_at_the_first_hit_and_a_new_one_after_it_ends(owner_conn):
    # A window aligned to the clock's minute let a burst straddling the minute pass twice
    # the limit; counted from the first hit, the burst's sixth is refused whenever it comes.
    check = ratelimits.Check(f"test:{uuid.uuid4()}", Limit(5, 60), "test")

    results = [transaction(lambda cur: ratelimits.hit(cur, [check])) for _ in range(6)]
    with owner_conn.cursor() as cur:
        # A period past the window's end: its hits no longer weigh (test_rate_limit_sliding).
        cur.execute("UPDATE rate_limit_buckets SET resets_at = now() - interval '61 s' WHERE key = %s", (check.key,))
    after_the_window = transaction(lambda cur: ratelimits.hit(cur, [check]))

    assert [len(r) for r in results] == [0] * 5 + [1]
    [refusal] = results[-1]
    assert refusal.hits == 6 and 71 <= refusal.retry_after <= 72  # the window, then 60/5 s for one hit to fade
    assert after_the_window == []


def test_velocity_blocks_the_21st_transfer_in_a_minute_and_audits_it(owner_conn, monkeypatch):
    from ledgerline import config, routes
    from ledgerline.auth import admission
    from ledgerline.caller import Request

    monkeypatch.setenv("LEDGERLINE_VELOCITY", "20/60s")
    config.settings.cache_clear()
    try:
        user = new_user()
        route = routes.Route("POST", "/v1/transfers", "tests.fake", routes.Access.USER, "t", money=True,
                             limit=routes.RateLimit.MONEY, velocity=True)  # fmt: skip
        request = Request("r", "192.0.2.1", "ua", {}, None)
        claims = session_claims(user)
        for _ in range(20):
            admission.admit(route, request, claims)
        with pytest.raises(errors.RateLimited) as exc:
            admission.admit(route, request, claims)
    finally:
        config.settings.cache_clear()

    assert exc.value.status == 429 and "transfers" in exc.value.detail
    [row] = audit_rows(owner_conn, events.VELOCITY_BLOCKED, f"velocity:money:user:{user.id}")
    assert row["actor_id"] == user.id


# -- API keys ---------------------------------------------------------------------------------------


def test_api_keys_are_for_merchants_stored_hashed_and_revocable(owner_conn):
    merchant = new_user("merchant")
    me = Principal(id=merchant.id, role="merchant")
    actor = Actor(id=merchant.id, type="merchant")

    created = transaction(lambda cur: apikeys.create(cur, me, name="shop", scopes=["accounts:read"], actor=actor))

    assert created.key.startswith(created.prefix + "_")
    listed, _ = transaction(lambda cur: apikeys.list_keys(cur, me))
    assert [k.id for k in listed] == [created.id] and "key" not in listed[0].to_json()
    assert not hasattr(listed[0], "key")
    with owner_conn.cursor() as cur:
        cur.execute("SELECT secret_hash FROM api_keys WHERE id = %s", (created.id,))
        assert created.key.encode() not in bytes(cur.fetchone()[0])
    owner = transaction(lambda cur: apikeys.authenticate_key(cur, created.key))
    assert owner["sub"] == str(merchant.id) and owner["scope"] == "accounts:read"

    transaction(lambda cur: apikeys.revoke(cur, me, created.id, actor))

    assert transaction(lambda cur: apikeys.authenticate_key(cur, created.key)) is None
    with pytest.raises(errors.Forbidden):
        plain = Principal(id=new_user().id, role="user")
        transaction(lambda cur: apikeys.create(cur, plain, name="x", scopes=["accounts:read"], actor=actor))


# -- housekeeping -------------------------------------------------------------------------------


def test_the_purge_drops_only_state_that_can_no_longer_matter(owner_conn):
    from ledgerline.auth import maintenance

    user = new_user()
    old_jti, live_jti = uuid.uuid4(), uuid.uuid4()
    with owner_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO revoked_tokens (jti, user_id, expires_at, reason) VALUES "
            "(%s, %s, now() - interval '2 days', 'logout'), (%s, %s, now() + interval '10 minutes', 'logout')",
            (old_jti, user.id, live_jti, user.id),
        )

    purged = transaction(maintenance.purge)

    assert purged["revoked_tokens"] >= 1
    with owner_conn.cursor() as cur:
        cur.execute("SELECT jti FROM revoked_tokens WHERE jti IN (%s, %s)", (old_jti, live_jti))
        assert [r[0] for r in cur.fetchall()] == [live_jti]


def call_route(module, method, path, claims, body=None, path_parameters=None):
    """Invoke a route's handler as the gateway would, with an authorizer's claims."""
    import importlib
    import json

    from ledgerline.local.gateway import LambdaContext, build_event

    mod = importlib.import_module(module)
    event = build_event(
        method=method, raw_path=path, raw_query="", headers={"content-type": "application/json"},
        body=json.dumps(body).encode() if body is not None else b"", source_ip="192.0.2.9", route=mod.api.route,
        path_parameters=path_parameters or {}, claims=claims, request_id=str(uuid.uuid4()),
    )  # fmt: skip
    result = mod.handler(event, LambdaContext(module, "r"))
    return result["statusCode"], json.loads(result["body"] or "null")


def test_an_api_key_reaches_only_the_routes_its_scopes_name(owner_conn):
    merchant = new_user("merchant")
    me = Principal(id=merchant.id, role="merchant")
    actor = Actor(id=merchant.id, type="merchant")
    created = transaction(lambda cur: apikeys.create(cur, me, name="pos", scopes=["accounts:read"], actor=actor))
    claims = apikeys.authorize(created.key)

    assert call_route("functions.ledger.accounts_list", "GET", "/v1/accounts", claims)[0] == 200
    status, body = call_route("functions.ledger.accounts_create", "POST", "/v1/accounts", claims, {"currency": "NGN"})
    assert (status, body["code"]) == (403, "forbidden") and "accounts:write" in body["detail"]
    for module, method, path in (
        ("functions.auth.me", "GET", "/v1/me"),
        ("functions.auth.api_keys_list", "GET", "/v1/api-keys"),
        ("functions.auth.me_sessions_revoke_all", "POST", "/v1/me/sessions/revoke-all"),
    ):
        assert call_route(module, method, path, claims)[0] == 403, path

    transaction(lambda cur: apikeys.revoke(cur, me, created.id, actor))

    assert call_route("functions.ledger.accounts_list", "GET", "/v1/accounts", claims)[0] == 401
    with pytest.raises(errors.Unauthorized):
        apikeys.authorize(created.key)


def test_scopes_are_those_of_existing_routes():
    scopes = apikeys.available_scopes()

    assert {"accounts:read", "accounts:write", "transfers:write"} <= set(scopes)
    assert not [s for s in scopes if s.split(":")[0] in ("me", "auth", "api-keys", "admin")]
    with pytest.raises(errors.ValidationFailed):
        me = Principal(id=new_user("merchant").id, role="merchant")
        transaction(lambda cur: apikeys.create(cur, me, name="x", scopes=["me:write"], actor=SYSTEM))
