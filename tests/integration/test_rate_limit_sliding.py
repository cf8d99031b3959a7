"""Rate limits as a sliding-window counter (``rate_limit_hit``), on the real PostgreSQL.

Time passes by moving a bucket's window back (``elapse``), which is what the counter sees
of the clock; one test also lets real seconds pass across a real boundary."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from ledgerline.auth import ratelimits
from ledgerline.config import Limit
from ledgerline.db import transaction

pytestmark = pytest.mark.usefixtures("database_url")


def new_check(count: int, period: int) -> ratelimits.Check:
    return ratelimits.Check(f"test:{uuid.uuid4()}", Limit(count, period), "test")


def hit(check: ratelimits.Check) -> list[ratelimits.Refusal]:
    return transaction(lambda cur: ratelimits.hit(cur, [check]))


def burst(check: ratelimits.Check, n: int) -> list[list[ratelimits.Refusal]]:
    return [hit(check) for _ in range(n)]


def passed(results: list[list[ratelimits.Refusal]]) -> int:
    return sum(1 for r in results if not r)


def elapse(owner_conn, check: ratelimits.Check, seconds: float) -> None:
    """``seconds`` pass for this bucket (its window ends that much sooner)."""
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE rate_limit_buckets SET resets_at = resets_at - make_interval(secs => %s) WHERE key = %s",
            (seconds, check.key),
        )
        assert cur.rowcount == 1


def bucket(owner_conn, check: ratelimits.Check) -> dict:
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT hits, previous_hits, refused, extract(epoch FROM resets_at - clock_timestamp()) AS left_s"
            " FROM rate_limit_buckets WHERE key = %s",
            (check.key,),
        )
        hits, previous, refused, left = cur.fetchone()
    return {"hits": hits, "previous_hits": previous, "refused": refused, "left_s": float(left)}


def test_a_burst_straddling_the_end_of_a_window_passes_at_most_the_limit(owner_conn):
    # A fixed window passed 5 at the end of one window and 5 more at the start of the next.
    check = new_check(5, 60)
    hit(check)  # the window opens
    elapse(owner_conn, check, 59.5)  # half a second before its end
    before = burst(check, 4)
    elapse(owner_conn, check, 1.0)  # the boundary passes: half a second into the next window
    after = burst(check, 5)

    assert passed(before) == 4
    assert passed(after) == 0
    assert bucket(owner_conn, check)["previous_hits"] == 5  # the window rolled over


def test_across_a_real_boundary_at_most_the_limit_passes_within_any_period():
    # The same, on the real clock: a 2 s window, hits just before and just after its end.
    check = new_check(4, 2)
    times = []
    start = time.monotonic()
    hit(check)
    times.append(time.monotonic())
    time.sleep(max(0.0, start + 1.8 - time.monotonic()))
    for _ in range(3):
        if not hit(check):
            times.append(time.monotonic())
    time.sleep(max(0.0, start + 2.2 - time.monotonic()))
    after = burst(check, 4)

    assert len(times) == 4 and passed(after) == 0
    time.sleep(max(0.0, start + 4.3 - time.monotonic()))  # the 4 hits are more than a period old
    assert hit(check) == []


def test_the_previous_windows_weight_fades_as_the_window_slides(owner_conn):
    check = new_check(10, 60)
    first = burst(check, 10)
    elapse(owner_conn, check, 90)  # half-way through the next window: the 10 weigh 5

    halfway = burst(check, 6)

    assert passed(first) == 10
    assert [bool(r) for r in halfway] == [False] * 5 + [True]


def test_a_period_without_requests_starts_afresh(owner_conn):
    check = new_check(3, 60)
    burst(check, 3)
    elapse(owner_conn, check, 125)  # more than two windows: nothing recent remains

    assert passed(burst(check, 4)) == 3
    assert bucket(owner_conn, check)["previous_hits"] == 0


def test_retry_after_is_exact_and_hammering_does_not_move_it(owner_conn):
    check = new_check(5, 60)
    burst(check, 5)
    [first] = hit(check)
    for _ in range(10):  # hammering meanwhile
        hit(check)
    [later] = hit(check)

    # 5 hits at the window's start weigh 5 until it ends, then fade: room for one more
    # after 60 + 60/5 s.
    assert first.hits == 6 and later.hits == 17  # the first refusal of the run is count + 1
    assert 71 <= first.retry_after <= 72 and later.retry_after == first.retry_after
    assert bucket(owner_conn, check)["hits"] == 5  # refusals never count
    elapse(owner_conn, check, later.retry_after - 1.5)
    assert hit(check) != []  # a second and a half early: still refused
    elapse(owner_conn, check, 1.5)
    assert hit(check) == []  # on time: passes
    assert bucket(owner_conn, check)["refused"] == 0  # and a new run of refusals may be audited


def test_retry_after_inside_the_window_when_the_previous_window_holds_the_hits(owner_conn):
    check = new_check(4, 60)
    burst(check, 4)
    elapse(owner_conn, check, 60)  # the next window opens; its previous window holds 4
    [refusal] = hit(check)

    # 4 * (1 - f) + 0 + 1 <= 4 once f >= 1/4: 15 s into the window.
    assert 15 <= refusal.retry_after <= 16
    elapse(owner_conn, check, refusal.retry_after)
    assert hit(check) == []


def test_concurrent_hits_straddling_a_boundary_pass_at_most_the_limit(owner_conn):
    check = new_check(7, 60)
    hit(check)
    elapse(owner_conn, check, 59.9)  # the window is about to end while the threads race
    results: list[list[ratelimits.Refusal]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(5)

    def race():
        barrier.wait()
        for _ in range(4):
            r = hit(check)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=race) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert passed(results) == 6  # 7 in all, the one before the race included
    state = bucket(owner_conn, check)
    assert state["hits"] + state["previous_hits"] == 7


def test_several_checks_are_counted_independently_in_one_call(owner_conn):
    tight, loose = new_check(1, 60), new_check(100, 60)
    transaction(lambda cur: ratelimits.hit(cur, [tight, loose]))

    refusals = transaction(lambda cur: ratelimits.hit(cur, [tight, loose]))

    assert [r.check.key for r in refusals] == [tight.key]
    assert bucket(owner_conn, loose)["hits"] == 2 and bucket(owner_conn, tight)["hits"] == 1


def test_admission_refuses_a_burst_across_the_boundary_and_audits_the_first_refusal_once(owner_conn, monkeypatch):
    # Through auth_admit, as every request is admitted: 3 a minute per IP and per user.
    from ledgerline import config, errors, routes
    from ledgerline.audit import Actor
    from ledgerline.auth import admission, sessions, users
    from ledgerline.caller import Request

    monkeypatch.setenv("LEDGERLINE_RATE_LIMITS", "default=3/minute")
    config.settings.cache_clear()
    try:
        user = transaction(
            lambda cur: users.create_user(
                cur, email=f"rl-{uuid.uuid4().hex[:10]}@example.test", password="correct horse battery staple 9",
                full_name="R", role="user", actor=Actor.system("tests"),
            )
        )  # fmt: skip
        session_id, _ = transaction(lambda cur: sessions.create_session(cur, user.id, sessions.Client(), amr=["pwd"]))
        claims = {
            "typ": "access",
            "sub": str(user.id),
            "sid": str(session_id),
            "jti": str(uuid.uuid4()),
            "amr": ["pwd"],
        }
        ip = f"192.0.2.{uuid.uuid4().int % 250 + 1}"
        keys = [f"default:ip:{ip}", f"default:user:{user.id}"]
        route = routes.Route("GET", "/v1/x", "tests.x", routes.Access.USER, "x")
        request = Request("r", ip, "ua", {}, None)

        def admit() -> int | None:
            """None when admitted, else the Retry-After of the 429."""
            try:
                admission.admit(route, request, claims)
            except errors.RateLimited as refused:
                return int(refused.headers["Retry-After"])
            return None

        def elapse(seconds: float) -> None:
            with owner_conn.cursor() as cur:
                cur.execute(
                    "UPDATE rate_limit_buckets SET resets_at = resets_at - make_interval(secs => %s) WHERE key = ANY(%s)",
                    (seconds, keys),
                )

        first = admit()
        elapse(59.5)
        before = [admit() for _ in range(2)]
        elapse(1.0)
        after = [admit() for _ in range(4)]
        with owner_conn.cursor() as cur:
            cur.execute(
                "SELECT resource_id, metadata->>'hits' FROM audit_log WHERE action = 'auth.rate_limited'"
                " AND resource_id = ANY(%s)",
                (keys,),
            )
            audited = sorted(cur.fetchall())
        elapse(max(after))
        on_time = admit()
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()

    assert first is None and before == [None, None]
    assert all(r is not None for r in after)  # a fixed window would have passed 3 more here
    assert audited == sorted([(k, "4") for k in keys])  # each key's first refusal, once
    assert on_time is None
