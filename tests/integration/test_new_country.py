"""New-country step-up on the real PostgreSQL: the e-mailed code's life (minted by the
worker, only the newest works, spent once, 5 tries), the mail throttle, and a login that
fails after its code was checked leaves no trace."""

from __future__ import annotations

import threading
import uuid

import pytest

from ledgerline import errors, notifications
from ledgerline.audit import Actor
from ledgerline.auth import new_country, sessions, throttle, users
from ledgerline.db import transaction

pytestmark = pytest.mark.usefixtures("database_url", "aws_endpoint")

PASSWORD = "correct horse battery staple 9"
HOME = sessions.Client(ip="41.58.0.1", user_agent="pytest", country="NG")
ABROAD = sessions.Client(ip="8.8.8.8", user_agent="pytest", country="US")


@pytest.fixture
def user():
    """A user whose first login (from NG) recorded NG."""
    email = f"nc-{uuid.uuid4().hex[:10]}@example.test"
    created = transaction(
        lambda cur: users.create_user(
            cur, email=email, password=PASSWORD, full_name="Ada", role="user", actor=Actor.system("tests")
        )
    )
    sessions.login(email, PASSWORD, None, HOME)
    return created


def challenge(user) -> str:
    """Log in from abroad without a code (refused, a challenge queued); the challenge id."""
    with pytest.raises(new_country.SecondFactorRequired) as refused:
        sessions.login(user.email, PASSWORD, None, ABROAD)
    assert refused.value.problem()["second_factor"] == "email_code"
    return newest_challenge(user)


def newest_challenge(user) -> str:
    def read(cur):
        cur.execute("SELECT id FROM login_challenges WHERE user_id = %s ORDER BY requested_at DESC LIMIT 1", (user.id,))
        return str(cur.fetchone()["id"])

    return transaction(read)


def mint(challenge_id: str) -> str | None:
    prepared = notifications.prepare({"type": new_country.EVENT, "challenge_id": challenge_id}, run=transaction)
    return None if prepared is None else prepared["code"]


def known(owner_conn, user) -> set[str]:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT country FROM known_countries WHERE user_id = %s", (user.id,))
        return {r[0] for r in cur.fetchall()}


def test_the_worker_mints_the_code_and_only_the_newest_works(user, owner_conn):
    challenge_id = challenge(user)
    first = mint(challenge_id)
    second = mint(challenge_id)  # a redelivered message

    assert first and second and len(second) == 6 and second.isdigit()
    if first != second:
        with pytest.raises(errors.OtpRequired):
            sessions.login(user.email, PASSWORD, first, ABROAD)
    assert sessions.login(user.email, PASSWORD, second, ABROAD).access_token
    assert known(owner_conn, user) == {"NG", "US"}
    with owner_conn.cursor() as cur:  # stored as a digest only
        cur.execute("SELECT code_hash, used_at FROM login_challenges WHERE id = %s", (challenge_id,))
        code_hash, used_at = cur.fetchone()
    assert len(bytes(code_hash)) == 32 and second.encode() not in bytes(code_hash) and used_at is not None
    assert mint(challenge_id) is None  # spent: nothing more to send


def age_login_failures(owner_conn, user):
    """Time passes for the login throttle (each wrong code is also a failed login)."""
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE login_throttle SET last_failed_at = last_failed_at - interval '2 minutes' WHERE subject = %s",
            (throttle.login_subject(user.email),),
        )


def test_five_wrong_codes_end_a_challenge(user, owner_conn):
    code = mint(challenge(user))
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    for _ in range(new_country.MAX_ATTEMPTS):
        age_login_failures(owner_conn, user)
        with pytest.raises(errors.OtpRequired):
            sessions.login(user.email, PASSWORD, wrong, ABROAD)

    age_login_failures(owner_conn, user)
    with pytest.raises(errors.OtpRequired):
        sessions.login(user.email, PASSWORD, code, ABROAD)
    assert known(owner_conn, user) == {"NG"}


def test_asking_again_within_a_minute_mails_no_second_code(user, owner_conn):
    challenge(user)
    challenge(user)

    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM login_challenges WHERE user_id = %s", (user.id,))
        assert cur.fetchone()[0] == 1
        cur.execute(
            "SELECT metadata->>'code_mailed' FROM audit_log WHERE action = %s AND resource_id = %s "
            "AND metadata->>'outcome' = 'challenged' ORDER BY occurred_at",
            (new_country.LOGIN_NEW_COUNTRY, str(user.id)),
        )
        assert [r[0] for r in cur.fetchall()] == ["true", "false"]


def test_a_suspended_users_code_is_not_sent(user, owner_conn):
    challenge_id = challenge(user)
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE users SET status = 'suspended' WHERE id = %s", (user.id,))

    assert mint(challenge_id) is None


def test_a_login_that_fails_after_its_code_was_checked_leaves_no_trace(user, owner_conn):
    code = mint(challenge(user))
    with owner_conn.cursor() as cur:  # the session cannot be opened: the database refuses it
        cur.execute(
            """
            CREATE FUNCTION test_refuse_session() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'simulated failure opening the session'; END $$
            """
        )
        cur.execute(
            "CREATE TRIGGER test_refuse_session BEFORE INSERT ON sessions FOR EACH ROW "
            f"WHEN (NEW.user_id = '{user.id}') EXECUTE FUNCTION test_refuse_session()"
        )
    try:
        with pytest.raises(Exception, match="simulated failure"):
            sessions.login(user.email, PASSWORD, code, ABROAD)

        assert known(owner_conn, user) == {"NG"}
        with owner_conn.cursor() as cur:
            cur.execute("SELECT used_at, attempts FROM login_challenges WHERE user_id = %s", (user.id,))
            assert cur.fetchall() == [(None, 0)]
            cur.execute(
                "SELECT count(*) FROM audit_log WHERE action = %s AND resource_id = %s AND metadata->>'outcome' = 'verified'",
                (new_country.LOGIN_NEW_COUNTRY, str(user.id)),
            )
            assert cur.fetchone()[0] == 0
    finally:
        with owner_conn.cursor() as cur:
            cur.execute("DROP TRIGGER test_refuse_session ON sessions")
            cur.execute("DROP FUNCTION test_refuse_session()")

    # The same code still works once the database lets the session open.
    assert sessions.login(user.email, PASSWORD, code, ABROAD).access_token
    assert known(owner_conn, user) == {"NG", "US"}


def test_an_unplaced_login_is_neither_stepped_up_nor_recorded(user, owner_conn):
    assert sessions.login(user.email, PASSWORD, None, sessions.Client(ip="10.0.0.9")).access_token
    assert known(owner_conn, user) == {"NG"}


def test_the_purge_drops_challenges_a_day_past_their_expiry_only(user, owner_conn):
    from ledgerline.auth import maintenance

    challenge(user)
    with owner_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO login_challenges (user_id, country, expires_at) VALUES (%s, 'JP', now() - interval '2 days')",
            (user.id,),
        )

    purged = transaction(maintenance.purge)

    assert purged["login_challenges"] >= 1
    with owner_conn.cursor() as cur:
        cur.execute("SELECT country FROM login_challenges WHERE user_id = %s", (user.id,))
        assert [r[0] for r in cur.fetchall()] == ["US"]


def test_parallel_logins_from_a_new_country_mail_one_code(user, owner_conn):
    barrier = threading.Barrier(6)
    outcomes = []

    arrival = new_country.assess(transaction, user.id, "US", None, otp_enabled=False)
    who = ABROAD.actor(user.id, "user")

    def attempt():
        # What each login does once its password checked out (argon2's time would spread them).
        barrier.wait()
        outcomes.append(new_country.demand(transaction, user.id, arrival, who).second_factor)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes == ["email_code"] * 6
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM login_challenges WHERE user_id = %s", (user.id,))
        assert cur.fetchone()[0] == 1
        cur.execute(
            "SELECT count(*) FROM outbox WHERE payload->>'type' = %s AND payload->>'challenge_id' IN "
            "(SELECT id::text FROM login_challenges WHERE user_id = %s)",
            (new_country.EVENT, user.id),
        )
        assert cur.fetchone()[0] == 1


def test_first_logins_racing_from_two_countries_record_one(owner_conn):
    fresh = transaction(
        lambda cur: users.create_user(
            cur, email=f"race-{uuid.uuid4().hex[:10]}@example.test", password=PASSWORD, full_name="Bo", role="user",
            actor=Actor.system("tests"),
        )
    )  # fmt: skip
    countries = ["NG", "US"] * 4
    barrier = threading.Barrier(len(countries))
    outcomes: dict[str, list[str]] = {"NG": [], "US": []}

    def attempt(country):
        # Each login assessed "first country" before any of them recorded one.
        arrival = new_country.Arrival(country, None, first=True, second_factor="none")
        barrier.wait()
        try:
            transaction(lambda cur: new_country.remember(cur, fresh.id, country, arrival, Actor.system("tests")))
            outcomes[country].append("recorded")
        except errors.OtpRequired:
            outcomes[country].append("refused")

    threads = [threading.Thread(target=attempt, args=(c,)) for c in countries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    [winner] = known(owner_conn, fresh)
    loser = "US" if winner == "NG" else "NG"
    assert outcomes[winner] == ["recorded"] * 4 and outcomes[loser] == ["refused"] * 4
