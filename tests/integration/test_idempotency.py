"""The idempotency protocol against the real database: claim, run and store in one
transaction; replays, reuse with another request, refusals stored, crashes not stored,
a duplicate waiting on the first, expiry."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import pytest

from ledgerline import errors, idempotency, ledger
from ledgerline.db import transaction
from ledgerline.ledger.testing import new_wallet, user_actor


def attempt(scope, key, request_hash, work, *, on_failure=None, wait_ms=None):
    actor = user_actor(uuid.UUID(scope)) if len(scope) == 36 else user_actor(uuid.uuid4())
    return idempotency.execute(
        scope=scope,
        key=key,
        request_hash=request_hash,
        work=work,
        actor=actor,
        on_failure=on_failure,
        wait_ms=wait_ms,
    )


def transfer_work(src, dst, amount, calls):
    def work(cur):
        t = ledger.transfer(
            cur,
            from_account_id=src.id,
            to_account_id=dst.id,
            amount=Decimal(amount),
            currency=src.currency,
            actor=user_actor(src.owner_id),
        )
        # Counted once the transfer went through: a replay's claim fails with the work's
        # first statement (they travel together), before this line.
        calls.append(1)
        return 201, t.to_json()

    return work


def posted(account):
    return transaction(lambda cur: ledger.get_account(cur, account.id)).balance.posted


def key_row(scope, key):
    def read(cur):
        cur.execute("SELECT * FROM idempotency_keys WHERE scope = %s AND key = %s", (scope, key))
        return cur.fetchone()

    return transaction(read)


def test_parse_key_accepts_uuid4_only():
    key = uuid.uuid4()
    assert idempotency.parse_key(f"  {str(key).upper()} ") == key
    with pytest.raises(errors.IdempotencyKeyRequired):
        idempotency.parse_key(None)
    with pytest.raises(errors.IdempotencyKeyRequired):
        idempotency.parse_key("  ")
    for bad in ["not-a-uuid", str(uuid.uuid1()), str(uuid.uuid4()).replace("-", ""), str(uuid.uuid4()) + "0"]:
        with pytest.raises(errors.IdempotencyKeyInvalid):
            idempotency.parse_key(bad)


def test_fingerprint_ignores_key_order_but_not_values():
    a = idempotency.fingerprint("post", "/v1/transfers", {"amount": "1.00", "currency": "NGN"})
    b = idempotency.fingerprint("POST", "/v1/transfers", {"currency": "NGN", "amount": "1.00"})
    c = idempotency.fingerprint("POST", "/v1/transfers", {"currency": "NGN", "amount": "1.0"})
    d = idempotency.fingerprint("POST", "/v1/holds", {"currency": "NGN", "amount": "1.00"})
    assert a == b
    assert len({a, c, d}) == 3


def test_same_key_same_request_replays_and_moves_money_once(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    scope, key, calls = str(src.owner_id), uuid.uuid4(), []
    first = attempt(scope, key, "h1", transfer_work(src, dst, "10", calls))
    second = attempt(scope, key, "h1", transfer_work(src, dst, "10", calls))
    assert (first.status, first.replayed, second.status, second.replayed) == (201, False, 201, True)
    assert second.body == first.body
    assert calls == [1]
    assert posted(src) == Decimal("90")

    def replay_audits(cur):
        cur.execute(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'idempotency.replayed' AND resource_id = %s",
            (str(key),),
        )
        return cur.fetchone()["n"]

    assert transaction(replay_audits) == 1


def test_same_key_different_request_is_refused(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    scope, key, calls = str(src.owner_id), uuid.uuid4(), []
    attempt(scope, key, "h1", transfer_work(src, dst, "10", calls))
    with pytest.raises(errors.IdempotencyKeyReused):
        attempt(scope, key, "h2", transfer_work(src, dst, "20", calls))
    assert calls == [1]
    assert posted(src) == Decimal("90")


def test_keys_are_scoped_to_the_caller(database_url):
    a_src, a_dst = new_wallet("NGN", 100), new_wallet("NGN")
    b_src, b_dst = new_wallet("NGN", 100), new_wallet("NGN")
    key, calls = uuid.uuid4(), []
    attempt(str(a_src.owner_id), key, "h", transfer_work(a_src, a_dst, "10", calls))
    out = attempt(str(b_src.owner_id), key, "h", transfer_work(b_src, b_dst, "10", calls))
    assert not out.replayed
    assert calls == [1, 1]


def test_a_deterministic_refusal_is_stored_with_nothing_else_and_replayed(database_url):
    src, dst = new_wallet("NGN", 5), new_wallet("NGN")
    scope, key, calls, failures = str(src.owner_id), uuid.uuid4(), [], []

    def work(cur):
        calls.append(1)
        # Writes, then is refused: the writes must not survive next to the stored refusal.
        ledger.transfer(
            cur,
            from_account_id=src.id,
            to_account_id=dst.id,
            amount=Decimal(5),
            currency="NGN",
            actor=user_actor(src.owner_id),
        )
        raise errors.InsufficientFunds("not enough for the second leg")

    first = attempt(scope, key, "h", work, on_failure=lambda cur, err: failures.append(err.code))
    assert (first.status, first.content_type) == (409, idempotency.PROBLEM_JSON)
    assert '"code":"insufficient_funds"' in first.body
    assert failures == ["insufficient_funds"]
    assert posted(src) == Decimal("5") and posted(dst) == Decimal("0")
    # Funds arriving later do not change the answer for this key.
    replay = attempt(scope, key, "h", transfer_work(src, dst, "1", calls))
    assert (replay.status, replay.replayed, replay.body) == (409, True, first.body)
    assert calls == [1]


def test_a_crash_stores_nothing_so_a_retry_runs_again(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    scope, key, calls = str(src.owner_id), uuid.uuid4(), []

    def crashing(cur):
        transfer_work(src, dst, "10", calls)(cur)
        raise RuntimeError("lambda timed out")

    with pytest.raises(RuntimeError):
        attempt(scope, key, "h", crashing)
    assert key_row(scope, key) is None
    assert posted(src) == Decimal("100")
    retry = attempt(scope, key, "h", transfer_work(src, dst, "10", calls))
    assert (retry.status, retry.replayed) == (201, False)
    assert posted(src) == Decimal("90")


def test_unstored_statuses_are_not_kept(database_url):
    scope, key = str(uuid.uuid4()), uuid.uuid4()

    def limited(cur):
        raise errors.RateLimited("slow down", retry_after=3)

    with pytest.raises(errors.RateLimited):
        attempt(scope, key, "h", limited)
    assert key_row(scope, key) is None


def test_a_duplicate_waits_for_the_first_and_replays_it(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    scope, key, calls = str(src.owner_id), uuid.uuid4(), []
    started = threading.Event()
    results = {}

    def slow(cur):
        cur.execute("SELECT 1")  # the claim travels with the work's first statement
        started.set()
        time.sleep(0.5)
        return transfer_work(src, dst, "10", calls)(cur)

    first = threading.Thread(target=lambda: results.setdefault("first", attempt(scope, key, "h", slow)))
    first.start()
    assert started.wait(5)
    t0 = time.monotonic()
    results["second"] = attempt(scope, key, "h", transfer_work(src, dst, "10", calls))
    waited = time.monotonic() - t0
    first.join()
    assert results["second"].replayed and results["second"].body == results["first"].body
    assert waited > 0.2
    assert calls == [1]


def test_a_duplicate_that_cannot_wait_any_longer_gets_in_progress(database_url):
    scope, key = str(uuid.uuid4()), uuid.uuid4()
    started, release = threading.Event(), threading.Event()

    def holding(cur):
        cur.execute("SELECT 1")  # the claim travels with the work's first statement
        started.set()
        release.wait(10)
        return 201, {"ok": True}

    first = threading.Thread(target=lambda: attempt(scope, key, "h", holding))
    first.start()
    try:
        assert started.wait(5)
        with pytest.raises(errors.IdempotencyKeyInProgress):
            attempt(scope, key, "h", lambda cur: (201, {}), wait_ms=150)
    finally:
        release.set()
        first.join()
    assert attempt(scope, key, "h", lambda cur: (201, {})).replayed


def test_expired_keys_are_purged_and_an_expired_key_is_claimed_afresh(database_url, owner_conn):
    scope, key, other = str(uuid.uuid4()), uuid.uuid4(), uuid.uuid4()
    attempt(scope, key, "h", lambda cur: (201, {"n": 1}))
    attempt(scope, other, "h", lambda cur: (201, {"n": 1}))
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE scope = %s AND key = %s",
            (scope, key),
        )
    fresh = attempt(scope, key, "h2", lambda cur: (201, {"n": 2}))
    assert (fresh.replayed, fresh.body) == (False, '{"n":2}')
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE scope = %s", (scope,))
    assert transaction(idempotency.purge_expired) >= 2
    assert key_row(scope, key) is None and key_row(scope, other) is None


def test_a_refusal_stored_late_replays_whoever_took_the_key_meanwhile(database_url):
    """A refusal is stored by a second transaction; if a retry with the same key ran and
    committed in between, the refused caller is told that stored outcome, not its own."""
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    scope, key, calls = str(src.owner_id), uuid.uuid4(), []

    def refused_after_a_retry_won(cur):
        # The retry runs to completion while this attempt (which has not touched the
        # database yet, so holds no claim) is about to be refused.
        threading.Thread(target=lambda: attempt(scope, key, "h", transfer_work(src, dst, "10", calls))).run()
        raise errors.InsufficientFunds("refused on a stale view")

    outcome = attempt(scope, key, "h", refused_after_a_retry_won)
    assert (outcome.status, outcome.replayed) == (201, True)
    assert calls == [1]
    assert posted(src) == Decimal("90")
    assert key_row(scope, key)["status_code"] == 201


def test_in_progress_is_never_stored_as_the_outcome(database_url):
    """A duplicate told 409 in-progress leaves the key alone: once the first run crashes
    (and rolls back), a retry runs the operation instead of replaying that 409."""
    scope, key = str(uuid.uuid4()), uuid.uuid4()
    started, release = threading.Event(), threading.Event()

    def crashing(cur):
        cur.execute("SELECT 1")  # the claim travels with the work's first statement
        started.set()
        release.wait(10)
        raise RuntimeError("lambda timed out")

    crashes = []

    def first_run():
        try:
            attempt(scope, key, "h", crashing)
        except RuntimeError as exc:
            crashes.append(exc)

    first = threading.Thread(target=first_run)
    first.start()
    try:
        assert started.wait(5)
        with pytest.raises(errors.IdempotencyKeyInProgress):
            attempt(scope, key, "h", lambda cur: (201, {}), wait_ms=150)
    finally:
        release.set()
        first.join()
    assert len(crashes) == 1
    assert key_row(scope, key) is None
    retry = attempt(scope, key, "h", lambda cur: (201, {"ran": True}))
    assert (retry.status, retry.replayed, retry.body) == (201, False, '{"ran":true}')
