"""A refresh retried within its grace gets the same pair; any other reuse ends the family
(``ledgerline.auth.sessions.refresh``), on the real PostgreSQL with KMS (moto) signing."""

from __future__ import annotations

import threading
import uuid

import psycopg2.extras
import pytest

from ledgerline import errors
from ledgerline.audit import Actor
from ledgerline.auth import events, principal, sessions, tokens, users
from ledgerline.db import transaction

pytestmark = pytest.mark.usefixtures("database_url", "aws_endpoint")

PASSWORD = "correct horse battery staple 9"
CLIENT = sessions.Client(ip="198.51.100.8", user_agent="pytest-grace", request_id="req-grace")


def new_session() -> tuple[uuid.UUID, sessions.TokenPair]:
    """A user and the token pair of a fresh login of theirs (opened as login opens one)."""
    email = f"grace-{uuid.uuid4().hex[:10]}@example.test"
    user = transaction(
        lambda cur: users.create_user(
            cur, email=email, password=PASSWORD, full_name="Grace", role="user", actor=Actor.system("tests")
        )
    )
    started = transaction(lambda cur: sessions.start(cur, user.id, "user", CLIENT, amr=["pwd"]))
    return started.session_id, started.tokens


def age_rotations(owner_conn, session_id, seconds: int) -> None:
    """``seconds`` pass since the session's rotations."""
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE refresh_tokens SET rotated_at = rotated_at - make_interval(secs => %s)"
            " WHERE session_id = %s AND rotated_at IS NOT NULL",
            (seconds, session_id),
        )


def session_row(owner_conn, session_id) -> dict:
    with owner_conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("SELECT revoked_at, revoked_reason FROM sessions WHERE id = %s", (session_id,))
        return dict(cur.fetchone())


def refresh_rows(owner_conn, session_id) -> int:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM refresh_tokens WHERE session_id = %s", (session_id,))
        return cur.fetchone()[0]


def audited(owner_conn, action, session_id) -> list[dict]:
    with owner_conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            "SELECT metadata FROM audit_log WHERE action = %s AND resource_id = %s ORDER BY occurred_at",
            (action, str(session_id)),
        )
        return [r["metadata"] for r in cur.fetchall()]


def alive(pair: sessions.TokenPair) -> bool:
    try:
        principal.authenticate(tokens.verify_access_token(pair.access_token))
    except errors.Unauthorized:
        return False
    return True


def test_a_retry_within_the_grace_gets_the_same_pair_and_keeps_the_session(owner_conn):
    session_id, first = new_session()

    rotated = sessions.refresh(first.refresh_token, CLIENT)
    retried = sessions.refresh(first.refresh_token, CLIENT)  # the response was lost: sent again

    assert retried.access_token == rotated.access_token and retried.refresh_token == rotated.refresh_token
    assert rotated.refresh_token != first.refresh_token and 890 <= retried.expires_in <= 900
    assert session_row(owner_conn, session_id)["revoked_at"] is None and alive(retried)
    assert refresh_rows(owner_conn, session_id) == 2  # one rotation, not two
    assert audited(owner_conn, events.TOKEN_REFRESHED, session_id)[-1]["retry_within_grace"] is True
    assert audited(owner_conn, events.REFRESH_TOKEN_REUSED, session_id) == []
    following = sessions.refresh(retried.refresh_token, CLIENT)  # the new token works once
    assert alive(following)


def test_parallel_retries_of_one_token_all_get_one_pair(owner_conn):
    session_id, first = new_session()
    got: list[sessions.TokenPair] = []
    refused: list[str] = []
    barrier = threading.Barrier(6)

    def use():
        barrier.wait()
        try:
            got.append(sessions.refresh(first.refresh_token, CLIENT))
        except errors.Unauthorized as err:
            refused.append(err.detail)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert refused == [] and len(got) == 6
    assert len({(p.access_token, p.refresh_token) for p in got}) == 1
    assert refresh_rows(owner_conn, session_id) == 2
    assert session_row(owner_conn, session_id)["revoked_at"] is None and alive(got[0])


def test_a_retry_after_the_grace_is_reuse_and_ends_the_family(owner_conn):
    session_id, first = new_session()
    rotated = sessions.refresh(first.refresh_token, CLIENT)
    age_rotations(owner_conn, session_id, sessions.REUSE_GRACE_SECONDS + 1)

    with pytest.raises(errors.Unauthorized, match="already used"):
        sessions.refresh(first.refresh_token, CLIENT)

    assert session_row(owner_conn, session_id)["revoked_reason"] == "refresh_token_reused"
    assert not alive(rotated)
    with pytest.raises(errors.Unauthorized):
        sessions.refresh(rotated.refresh_token, CLIENT)
    [reuse] = audited(owner_conn, events.REFRESH_TOKEN_REUSED, session_id)
    assert reuse["family_revoked"] is True and reuse["within_grace"] is False


def test_a_retry_after_the_new_token_was_used_is_reuse_and_ends_the_family(owner_conn):
    session_id, first = new_session()
    rotated = sessions.refresh(first.refresh_token, CLIENT)
    newer = sessions.refresh(rotated.refresh_token, CLIENT)

    with pytest.raises(errors.Unauthorized, match="already used"):
        sessions.refresh(first.refresh_token, CLIENT)  # within the grace, but too late

    assert session_row(owner_conn, session_id)["revoked_reason"] == "refresh_token_reused"
    assert not alive(newer)
    [reuse] = audited(owner_conn, events.REFRESH_TOKEN_REUSED, session_id)
    assert reuse["family_revoked"] is True and reuse["within_grace"] is True


def test_a_retry_into_an_ended_session_gets_nothing(owner_conn):
    session_id, first = new_session()
    sessions.refresh(first.refresh_token, CLIENT)
    transaction(lambda cur: sessions.revoke_all(cur, transaction_user(cur, session_id), reason="revoked_by_user"))

    with pytest.raises(errors.Unauthorized):
        sessions.refresh(first.refresh_token, CLIENT)

    assert session_row(owner_conn, session_id)["revoked_reason"] == "revoked_by_user"


def transaction_user(cur, session_id):
    cur.execute("SELECT user_id FROM sessions WHERE id = %s", (session_id,))
    return cur.fetchone()["user_id"]


def test_a_retry_racing_the_new_tokens_first_use_never_leaves_both_alive(owner_conn):
    # Whichever the database serialises first decides: the retry before the use gets the
    # pair (and the use then rotates it); the retry after the use is reuse, and the family
    # ends. Never a pair handed out for a token already spent with the session still alive.
    for _ in range(4):
        session_id, first = new_session()
        rotated = sessions.refresh(first.refresh_token, CLIENT)
        outcome: dict[str, object] = {}
        barrier = threading.Barrier(2)

        def run(name, token, outcome=outcome, barrier=barrier):
            barrier.wait()
            try:
                outcome[name] = sessions.refresh(token, CLIENT)
            except errors.Unauthorized as err:
                outcome[name] = err

        threads = [
            threading.Thread(target=run, args=("retry", first.refresh_token)),
            threading.Thread(target=run, args=("use", rotated.refresh_token)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        revoked = session_row(owner_conn, session_id)["revoked_reason"]
        assert isinstance(outcome["use"], sessions.TokenPair)
        if isinstance(outcome["retry"], sessions.TokenPair):
            assert outcome["retry"].refresh_token == rotated.refresh_token and revoked is None
            assert alive(outcome["use"])
        else:
            assert revoked == "refresh_token_reused" and not alive(outcome["use"])


def test_the_successor_is_stored_as_a_digest_only(owner_conn):
    session_id, first = new_session()
    rotated = sessions.refresh(first.refresh_token, CLIENT)

    with owner_conn.cursor() as cur:
        cur.execute("SELECT token_hash FROM refresh_tokens WHERE session_id = %s", (session_id,))
        stored = {bytes(r[0]) for r in cur.fetchall()}
        cur.execute("SELECT rotation_key FROM sessions WHERE id = %s", (session_id,))
        key = bytes(cur.fetchone()[0])

    assert stored == {sessions.digest(first.refresh_token), sessions.digest(rotated.refresh_token)}
    assert len(key) == 32 and key not in rotated.refresh_token.encode()


def test_a_refresh_that_fails_midway_leaves_the_token_live_and_no_trace(owner_conn):
    session_id, first = new_session()
    name = f"test_fault_{uuid.uuid4().hex[:8]}"
    with owner_conn.cursor() as cur:  # the successor's row cannot be written: a crash mid-rotation
        cur.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'simulated crash mid-rotation'; END $$
            """
        )
        cur.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON refresh_tokens FOR EACH ROW"
            f" WHEN (NEW.session_id = '{session_id}') EXECUTE FUNCTION {name}()"
        )
    try:
        with pytest.raises(Exception, match="simulated crash"):
            sessions.refresh(first.refresh_token, CLIENT)
    finally:
        with owner_conn.cursor() as cur:
            cur.execute(f"DROP TRIGGER {name} ON refresh_tokens")
            cur.execute(f"DROP FUNCTION {name}()")

    with owner_conn.cursor() as cur:
        cur.execute("SELECT rotated_at FROM refresh_tokens WHERE session_id = %s", (session_id,))
        assert cur.fetchall() == [(None,)]  # not rotated, no successor
        cur.execute("SELECT rotation_key FROM sessions WHERE id = %s", (session_id,))
        assert cur.fetchone() == (None,)
    assert audited(owner_conn, events.TOKEN_REFRESHED, session_id) == []
    assert alive(sessions.refresh(first.refresh_token, CLIENT))  # the token still works, once
