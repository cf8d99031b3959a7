"""The idempotency protocol against the real database, through the one money statement
(``money_call``): replays, reuse with another request, refusals stored, crashes not
stored, a duplicate waiting on the first, expiry."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import pytest

from ledgerline import errors, idempotency, jsonutil, ledger, routes
from ledgerline.auth import admission, sessions
from ledgerline.caller import Request
from ledgerline.db import transaction
from ledgerline.ledger import operations
from ledgerline.ledger.testing import TEST_ADMIN, new_wallet
from tests.faults import posting_fault

TRANSFERS = routes.by_handler("functions.ledger.transfers_create")


def caller(user_id, route=TRANSFERS):
    """The admission of a request of ``user_id`` (a live session) to ``route``."""
    session_id, _ = transaction(lambda cur: sessions.create_session(cur, user_id, sessions.Client(), amr=["pwd"]))
    claims = {"typ": "access", "sub": str(user_id), "jti": str(uuid.uuid4()), "sid": str(session_id), "amr": ["pwd"]}
    return admission.prepare(route, Request("r", "192.0.2.9", "tests", {}, None), claims)


def send(adm, key, body, *, request_hash="h", wait_ms=None, op="transfer"):
    args = operations.by_name(op).arguments(body, owner=adm.claimed.id)
    return idempotency.call(adm, key=key, request_hash=request_hash, operation=op, args=args, wait_ms=wait_ms)


def transfer(src, dst, amount, **extra):
    return {"from_account_id": str(src.id), "to_account_id": str(dst.id), "amount": amount, "currency": "NGN", **extra}


def posted(account):
    return transaction(lambda cur: ledger.get_account(cur, account.id)).balance.posted


def key_row(scope, key):
    def read(cur):
        cur.execute("SELECT * FROM idempotency_keys WHERE scope = %s AND key = %s", (str(scope), key))
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
    adm, key = caller(src.owner_id), uuid.uuid4()

    first = send(adm, key, transfer(src, dst, "10.00"))
    second = send(adm, key, transfer(src, dst, "10.00"))

    assert (first.status, first.replayed, second.status, second.replayed) == (201, False, 201, True)
    assert second.body == first.body
    assert jsonutil.loads(first.body)["amount"] == {"amount": "10.00", "currency": "NGN"}
    assert posted(src) == Decimal("90")

    def replay_audits(cur):
        cur.execute(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'idempotency.replayed' AND resource_id = %s",
            (str(key),),
        )
        return cur.fetchone()["n"]

    assert transaction(replay_audits) == 1


def test_same_key_different_request_is_refused_and_not_stored_over(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    adm, key = caller(src.owner_id), uuid.uuid4()
    first = send(adm, key, transfer(src, dst, "10.00"), request_hash="h1")

    other = send(adm, key, transfer(src, dst, "20.00"), request_hash="h2")

    assert (other.status, jsonutil.loads(other.body)["code"]) == (422, "idempotency_key_reused")
    assert posted(src) == Decimal("90")
    assert key_row(src.owner_id, key)["response_body"] == first.body


def test_keys_are_scoped_to_the_caller(database_url):
    a_src, a_dst = new_wallet("NGN", 100), new_wallet("NGN")
    b_src, b_dst = new_wallet("NGN", 100), new_wallet("NGN")
    key = uuid.uuid4()
    send(caller(a_src.owner_id), key, transfer(a_src, a_dst, "10.00"))

    out = send(caller(b_src.owner_id), key, transfer(b_src, b_dst, "10.00"))

    assert not out.replayed
    assert (posted(a_src), posted(b_src)) == (Decimal("90"), Decimal("90"))


def test_a_refusal_is_answered_stored_and_replayed_by_the_same_statement(database_url):
    src, dst = new_wallet("NGN", 5), new_wallet("NGN")
    adm, key = caller(src.owner_id), uuid.uuid4()

    first = send(adm, key, transfer(src, dst, "6.00"))

    assert (first.status, first.content_type) == (409, errors.PROBLEM_JSON)
    assert jsonutil.loads(first.body)["code"] == "insufficient_funds"
    assert posted(src) == Decimal("5") and posted(dst) == Decimal("0")
    # Funds arriving later do not change the answer for this key.
    transaction(lambda cur: ledger.adjust(cur, account_id=src.id, amount=Decimal(10), currency="NGN",
                                          direction="credit", reason="later funds", actor=TEST_ADMIN))  # fmt: skip
    replay = send(adm, key, transfer(src, dst, "6.00"))
    assert (replay.status, replay.replayed, replay.body) == (409, True, first.body)


@pytest.mark.parametrize(
    ("amount", "field_message"),
    [("1.001", "amount has 3 decimal places; NGN allows 2"), ("1.00\n", None), ("-1", None), ("0", None)],
)
def test_a_bad_amount_is_a_stored_refusal_like_any_other(database_url, amount, field_message):
    src, dst = new_wallet("NGN", 5), new_wallet("NGN")
    adm, key = caller(src.owner_id), uuid.uuid4()

    first = send(adm, key, transfer(src, dst, amount))

    problem = jsonutil.loads(first.body)
    assert (first.status, problem["code"], problem["errors"][0]["field"]) == (422, "validation_error", "amount")
    if field_message:
        assert problem["errors"][0]["message"] == field_message
    assert send(adm, key, transfer(src, dst, amount)).replayed
    assert posted(src) == Decimal("5")


def test_a_crash_stores_nothing_so_a_retry_runs_again(database_url, owner_conn):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    adm, key, marker = caller(src.owner_id), uuid.uuid4(), f"crash-{uuid.uuid4().hex[:8]}"
    body = transfer(src, dst, "10.00", description=marker)

    with posting_fault(owner_conn, marker):
        with pytest.raises(Exception, match="simulated crash"):
            send(adm, key, body)
        assert key_row(src.owner_id, key) is None
        assert posted(src) == Decimal("100")
        retry = send(adm, key, body)

    assert (retry.status, retry.replayed) == (201, False)
    assert posted(src) == Decimal("90")


def test_a_refused_admission_is_not_stored(database_url, monkeypatch):
    from ledgerline import config

    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    monkeypatch.setenv("LEDGERLINE_RATE_LIMITS", "money=1/minute")
    config.settings.cache_clear()
    try:
        adm, key = caller(src.owner_id), uuid.uuid4()
        send(adm, uuid.uuid4(), transfer(src, dst, "1.00"))
        with pytest.raises(errors.RateLimited):
            send(adm, key, transfer(src, dst, "1.00"))
    finally:
        config.settings.cache_clear()
    assert key_row(src.owner_id, key) is None
    assert posted(src) == Decimal("99")


def test_an_ended_session_moves_nothing_and_claims_no_key(database_url):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    adm, key = caller(src.owner_id), uuid.uuid4()
    transaction(lambda cur: sessions.revoke_all(cur, src.owner_id, reason="test"))

    with pytest.raises(errors.Unauthorized):
        send(adm, key, transfer(src, dst, "1.00"))

    assert key_row(src.owner_id, key) is None and posted(src) == Decimal("100")


def test_a_duplicate_waits_for_the_first_and_replays_it(database_url, owner_conn):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    adm, key, marker = caller(src.owner_id), uuid.uuid4(), f"slow-{uuid.uuid4().hex[:8]}"
    body = transfer(src, dst, "10.00", description=marker)
    results = {}

    with posting_fault(owner_conn, marker, sleep=0.6, crash=False):
        first = threading.Thread(target=lambda: results.setdefault("first", send(adm, key, body)))
        first.start()
        time.sleep(0.2)  # the first holds the claim, sleeping mid-posting
        t0 = time.monotonic()
        results["second"] = send(adm, key, body)
        waited = time.monotonic() - t0
        first.join()

    assert results["second"].replayed and results["second"].body == results["first"].body
    assert waited > 0.2
    assert posted(src) == Decimal("90")


def test_a_duplicate_that_cannot_wait_any_longer_gets_in_progress_which_is_never_stored(database_url, owner_conn):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    adm, key, marker = caller(src.owner_id), uuid.uuid4(), f"stuck-{uuid.uuid4().hex[:8]}"
    body = transfer(src, dst, "10.00", description=marker)
    crashes = []

    def first_run():
        try:
            send(adm, key, body)
        except Exception as exc:
            crashes.append(exc)

    with posting_fault(owner_conn, marker, sleep=1.0):  # sleeps holding the claim, then crashes
        first = threading.Thread(target=first_run)
        first.start()
        time.sleep(0.2)
        with pytest.raises(errors.IdempotencyKeyInProgress):
            send(adm, key, body, wait_ms=150)
        first.join()
        assert len(crashes) == 1 and key_row(src.owner_id, key) is None
        retry = send(adm, key, body)  # runs: the 409 was never the key's outcome

    assert (retry.status, retry.replayed) == (201, False)
    assert posted(src) == Decimal("90")


def test_expired_keys_are_purged_and_an_expired_key_is_claimed_afresh(database_url, owner_conn):
    src, dst = new_wallet("NGN", 100), new_wallet("NGN")
    adm, key, other = caller(src.owner_id), uuid.uuid4(), uuid.uuid4()
    send(adm, key, transfer(src, dst, "1.00"), request_hash="h1")
    send(adm, other, transfer(src, dst, "1.00"), request_hash="h1")
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE scope = %s AND key = %s",
            (str(src.owner_id), key),
        )

    fresh = send(adm, key, transfer(src, dst, "2.00"), request_hash="h2")

    assert (fresh.status, fresh.replayed) == (201, False)
    assert posted(src) == Decimal("96")
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE scope = %s",
            (str(src.owner_id),),
        )
    assert transaction(idempotency.purge_expired) >= 2
    assert key_row(src.owner_id, key) is None and key_row(src.owner_id, other) is None
