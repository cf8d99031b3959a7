"""Idle sessions (PCI DSS 8.2.8): use is recorded at admission at most once a minute, and
a session unused longer than the limit is refused at admission and ended at refresh."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg2.extras
import pytest

from ledgerline import config, errors, routes
from ledgerline.audit import Actor
from ledgerline.auth import admission, events, sessions, tokens, users
from ledgerline.caller import Request
from ledgerline.db import transaction

pytestmark = pytest.mark.usefixtures("database_url", "aws_endpoint")

PASSWORD = "correct horse battery staple 9"
CLIENT = sessions.Client(ip="198.51.100.9", user_agent="pytest-idle", request_id="req-idle")
ROUTE = routes.Route("GET", "/v1/x", "tests.x", routes.Access.USER, "x")
REQUEST = Request("r", "192.0.2.10", "ua", {}, None)


def new_session():
    """(session id, its login's token pair, the claims of its access token)."""
    email = f"idle-{uuid.uuid4().hex[:10]}@example.test"
    user = transaction(
        lambda cur: users.create_user(
            cur, email=email, password=PASSWORD, full_name="Idle", role="user", actor=Actor.system("tests")
        )
    )
    started = transaction(lambda cur: sessions.start(cur, user.id, "user", CLIENT, amr=["pwd"]))
    return started.session_id, started.tokens, tokens.verify_access_token(started.tokens.access_token)


def last_seen(owner_conn, session_id, *, set_ago: float | None = None) -> float:
    """Seconds since the session was last seen (after setting it ``set_ago`` seconds back)."""
    with owner_conn.cursor() as cur:
        if set_ago is not None:
            cur.execute(
                "UPDATE sessions SET last_seen_at = now() - make_interval(secs => %s) WHERE id = %s",
                (set_ago, session_id),
            )
        cur.execute("SELECT extract(epoch FROM now() - last_seen_at) FROM sessions WHERE id = %s", (session_id,))
        return float(cur.fetchone()[0])


def session_row(owner_conn, session_id) -> dict:
    with owner_conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("SELECT revoked_at, revoked_reason FROM sessions WHERE id = %s", (session_id,))
        return dict(cur.fetchone())


@pytest.fixture
def idle_minutes(monkeypatch):
    def set_to(minutes: int) -> None:
        monkeypatch.setenv("LEDGERLINE_SESSION_IDLE_MINUTES", str(minutes))
        config.settings.cache_clear()

    yield set_to
    monkeypatch.undo()
    config.settings.cache_clear()


def test_an_idle_sessions_refresh_is_refused_and_the_session_ended_and_audited(owner_conn):
    session_id, pair, claims = new_session()
    last_seen(owner_conn, session_id, set_ago=15 * 60 + 5)

    with pytest.raises(errors.SessionIdle) as refused:
        sessions.refresh(pair.refresh_token, CLIENT)

    assert refused.value.status == 401 and refused.value.code == "session_idle"
    assert "15 minutes" in refused.value.detail
    assert session_row(owner_conn, session_id)["revoked_reason"] == "idle"
    with owner_conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            "SELECT actor_id, metadata FROM audit_log WHERE action = %s AND resource_id = %s",
            (events.SESSION_IDLE_ENDED, str(session_id)),
        )
        [row] = cur.fetchall()
    assert str(row["actor_id"]) == claims["sub"] and row["metadata"]["idle_minutes"] == 15
    with pytest.raises(errors.Unauthorized):
        admission.admit(ROUTE, REQUEST, claims)  # its access tokens went with it
    with pytest.raises(errors.Unauthorized):
        sessions.refresh(pair.refresh_token, CLIENT)  # and a second try finds nothing


def test_a_session_used_within_the_limit_refreshes(owner_conn):
    session_id, pair, _ = new_session()
    last_seen(owner_conn, session_id, set_ago=14 * 60)

    rotated = sessions.refresh(pair.refresh_token, CLIENT)

    assert rotated.refresh_token != pair.refresh_token
    assert last_seen(owner_conn, session_id) < 5  # the refresh is a use


def test_use_is_recorded_at_admission_at_most_once_a_minute(owner_conn):
    session_id, _, claims = new_session()
    last_seen(owner_conn, session_id, set_ago=300)
    admission.admit(ROUTE, REQUEST, claims)
    recorded = last_seen(owner_conn, session_id)

    last_seen(owner_conn, session_id, set_ago=30)
    admission.admit(ROUTE, REQUEST, claims)
    unchanged = last_seen(owner_conn, session_id)

    assert recorded < 5
    assert 29 <= unchanged <= 35  # younger than a minute: not written again


def test_a_refused_request_records_no_use(owner_conn):
    session_id, _, claims = new_session()
    last_seen(owner_conn, session_id, set_ago=300)
    admin_only = routes.Route("GET", "/v1/admin/x", "tests.x", routes.Access.ADMIN, "x")
    with pytest.raises(errors.DomainError):
        admission.admit(admin_only, REQUEST, claims)  # 403: a user on an administrator's route

    assert last_seen(owner_conn, session_id) >= 299, "a refusal does not keep the session from going idle"


def test_a_session_in_use_outlives_the_idle_limit(owner_conn):
    # 14 minutes unused, then a request: the refresh 2 minutes later finds it 2 minutes idle,
    # where, without the request recorded, it would have been 16.
    session_id, pair, claims = new_session()
    last_seen(owner_conn, session_id, set_ago=14 * 60)
    admission.admit(ROUTE, REQUEST, claims)
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE sessions SET last_seen_at = last_seen_at - interval '2 minutes' WHERE id = %s", (session_id,)
        )

    assert sessions.refresh(pair.refresh_token, CLIENT).access_token


def test_a_shorter_limit_is_enforced_at_admission_too(owner_conn, idle_minutes):
    idle_minutes(5)
    session_id, pair, claims = new_session()
    last_seen(owner_conn, session_id, set_ago=4 * 60)
    admission.admit(ROUTE, REQUEST, claims)  # 4 minutes: fine, and recorded
    last_seen(owner_conn, session_id, set_ago=5 * 60 + 5)

    with pytest.raises(errors.Unauthorized, match="more than 5 minutes"):
        admission.admit(ROUTE, REQUEST, claims)
    with pytest.raises(errors.SessionIdle):
        sessions.refresh(pair.refresh_token, CLIENT)
    assert session_row(owner_conn, session_id)["revoked_reason"] == "idle"


def test_recording_use_never_waits_for_a_session_row_another_holds(owner_conn, database_url):
    from ledgerline.db.connection import connect

    session_id, _, claims = new_session()
    last_seen(owner_conn, session_id, set_ago=120)
    holder = connect(database_url)  # a refresh in flight holds the session's row
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT 1 FROM sessions WHERE id = %s FOR UPDATE", (session_id,))
        started = time.monotonic()
        admission.admit(ROUTE, REQUEST, claims)
        waited = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()

    assert waited < 2  # the statement timeout is 5 s: a wait would have failed it
    assert 115 <= last_seen(owner_conn, session_id) <= 130  # skipped, recorded by a later request


def test_parallel_requests_of_one_session_record_its_use_without_failing(owner_conn):
    session_id, _, claims = new_session()
    last_seen(owner_conn, session_id, set_ago=120)
    failures: list[BaseException] = []
    barrier = threading.Barrier(6)

    def request():
        barrier.wait()
        try:
            for _ in range(3):
                admission.admit(ROUTE, REQUEST, claims)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert last_seen(owner_conn, session_id) < 5
