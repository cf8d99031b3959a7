"""POST /v1/transfers/batch over real HTTP (issue 19): atomic batches move all or nothing,
independent batches answer each item, overlapping batches never deadlock, the batch's
key replays its result, hostile input changes nothing, a crash midway leaves no trace,
velocity counts items; the ledger check is clean after each."""

from __future__ import annotations

import json
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.faults import posting_fault

PATH = "/v1/transfers/batch"


def item(src: str, dst: str, amount: str = "1.00", currency: str = "NGN", **extra: Any) -> dict[str, Any]:
    return {"from_account_id": src, "to_account_id": dst, "amount": amount, "currency": currency, **extra}


def batch(client, mode: str, items: list[dict[str, Any]], key: Any = True, **kw):
    return client.post(PATH, json={"mode": mode, "transfers": items}, idempotency_key=key, **kw)


def posted(client, account_id: str) -> Decimal:
    return Decimal(client.get(f"/v1/accounts/{account_id}").json()["balance"]["posted"]["amount"])


def state(owner_conn, *account_ids: str) -> tuple[Any, ...]:
    """What a refused batch must not change: the accounts' balances and entries, batches."""
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT account_id, posted, held, version FROM balances WHERE account_id = ANY(%s::uuid[])"
            " ORDER BY account_id",
            (list(account_ids),),
        )
        balances = cur.fetchall()
        cur.execute("SELECT count(*) FROM entries WHERE account_id = ANY(%s::uuid[])", (list(account_ids),))
        entries = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM transfer_batches")
        return balances, entries, cur.fetchone()[0]


def audit(owner_conn, actor_id: str, action: str) -> list[dict[str, Any]]:
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT resource_type, resource_id, metadata FROM audit_log WHERE actor_id = %s AND action = %s"
            " ORDER BY occurred_at",
            (actor_id, action),
        )
        return [{"resource_type": r[0], "resource_id": r[1], "metadata": r[2]} for r in cur.fetchall()]


def assert_problem(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["status"], problem["code"]) == (status, code)
    return problem


@pytest.fixture
def ledger_clean(admin):
    """After the test, the ledger check (incremental and full slices) finds nothing."""
    yield
    assert admin.get("/v1/admin/ledger/check").json() == {"ok": True, "findings": []}


def me(client) -> str:
    return client.get("/v1/me").json()["id"]


# -- atomic -----------------------------------------------------------------------------------------


def test_an_atomic_batch_posts_every_transfer_with_one_bulk_audit_row(wallet, owner_conn, ledger_clean):
    alice, a = wallet("NGN", "100.00")
    bob, b = wallet("NGN")
    carol, c = wallet("NGN")

    r = batch(alice, "atomic", [item(a, b, "10.00", description="rent"), item(a, c, "2.50"), item(a, b, "0.50")])

    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["mode"], body["posted"], body["refused"]) == ("atomic", 3, 0)
    assert body["totals"] == [{"amount": "13.00", "currency": "NGN"}]
    assert [(x["index"], x["status"]) for x in body["results"]] == [(0, "posted"), (1, "posted"), (2, "posted")]
    first = body["results"][0]["transfer"]
    assert first["amount"] == {"amount": "10.00", "currency": "NGN"} and first["description"] == "rent"
    assert alice.get(f"/v1/transfers/{first['id']}").json() == first  # each is an ordinary transfer
    assert (posted(alice, a), posted(bob, b), posted(carol, c)) == (Decimal("87"), Decimal("10.5"), Decimal("2.5"))
    alice_id = me(alice)
    [bulk] = audit(owner_conn, alice_id, "transfer.batch_completed")
    assert bulk["resource_type"] == "transfer_batch" and bulk["resource_id"] == body["id"]
    assert bulk["metadata"]["items"] == 3 and bulk["metadata"]["posted"] == 3
    assert bulk["metadata"]["totals"] == [{"amount": "13.00", "currency": "NGN"}]
    per_item = audit(owner_conn, alice_id, "transfer.completed")
    assert sorted(row["metadata"]["batch_index"] for row in per_item) == [0, 1, 2]
    assert {row["metadata"]["batch_id"] for row in per_item} == {body["id"]}
    # Each item reads in the feeds as a transfer does; the batch as the sender's.
    bobs = [x["message"] for x in bob.get("/v1/activity").json()["items"]]
    assert (
        "Wallet credited NGN 10.00 (transfer received)" in bobs
        and "Wallet credited NGN 0.50 (transfer received)" in bobs
    )
    alices = [x["message"] for x in alice.get("/v1/activity").json()["items"]]
    assert "You sent a batch of transfers" in alices and "You sent NGN 2.50 to another wallet" in alices


def test_an_atomic_batch_with_one_bad_item_moves_nothing(wallet, owner_conn, ledger_clean):
    alice, a = wallet("NGN", "10.00")
    _, b = wallet("NGN")
    _, c = wallet("NGN")
    before = state(owner_conn, a, b, c)

    # Each item fits alone; the third does not fit after the first two.
    r = batch(alice, "atomic", [item(a, b, "4.00"), item(a, c, "4.00"), item(a, b, "4.00"), item(a, c, "1.00")])

    problem = assert_problem(r, 409, "insufficient_funds")
    assert problem["index"] == 2 and problem["detail"].startswith("transfers[2]: ")
    assert state(owner_conn, a, b, c) == before
    alice_id = me(alice)
    assert audit(owner_conn, alice_id, "transfer.completed") == []
    [failed] = audit(owner_conn, alice_id, "transfer.batch_failed")
    assert failed["metadata"]["error"]["code"] == "insufficient_funds"


@pytest.mark.parametrize(
    ("bad", "status", "code", "field"),
    [
        ({"amount": "1.001"}, 422, "validation_error", "transfers.1.amount"),
        ({"amount": "0"}, 422, "validation_error", "transfers.1.amount"),
        ({"currency": "XYZ"}, 422, "validation_error", "transfers.1.currency"),
        ({"to_account_id": "same"}, 422, "validation_error", "transfers.1.to_account_id"),
        ({"to_account_id": str(uuid.uuid4())}, 404, "not_found", None),
        ({"from_account_id": "foreign"}, 404, "not_found", None),
        ({"currency": "USD"}, 422, "validation_error", None),
    ],
    ids=["decimals", "zero", "currency", "same-account", "unknown-destination", "foreign-source", "wrong-currency"],
)
def test_an_atomic_batch_names_the_first_bad_item_and_why(wallet, owner_conn, bad, status, code, field):
    alice, a = wallet("NGN", "100.00")
    _, b = wallet("NGN", "5.00")
    wrong = dict(bad)
    if wrong.get("to_account_id") == "same":
        wrong["to_account_id"] = a
    if wrong.get("from_account_id") == "foreign":
        wrong.update(from_account_id=b, to_account_id=a)  # bob's wallet: not the caller's to debit
    before = state(owner_conn, a, b)

    r = batch(alice, "atomic", [item(a, b), {**item(a, b), **wrong}, item(a, b, "1000.00")])

    problem = assert_problem(r, status, code)
    assert problem["index"] == 1 and problem["detail"].startswith("transfers[1]: ")
    if field:
        assert problem["errors"][0]["field"] == field
    assert state(owner_conn, a, b) == before


# -- independent ------------------------------------------------------------------------------------


def test_an_independent_batch_reports_each_item(wallet, owner_conn, ledger_clean):
    alice, a = wallet("NGN", "10.00")
    bob, b = wallet("NGN", "3.00")
    items = [
        item(a, b, "4.00"),  # posts
        item(a, b, "1.005"),  # too many decimals
        item(b, a, "1.00"),  # bob's wallet: not alice's to debit
        item(a, str(uuid.uuid4()), "1.00"),  # no such account
        item(a, a, "1.00"),  # to itself
        item(a, b, "7.00"),  # 6.00 left after the first: short
        item(a, b, "6.00"),  # exactly what is left
    ]

    r = batch(alice, "independent", items)

    assert r.status_code == 201, r.text
    body = r.json()
    results = body["results"]
    assert [x["index"] for x in results] == list(range(7))
    assert [x["status"] for x in results] == ["posted", "refused", "refused", "refused", "refused", "refused", "posted"]
    assert [x.get("error", {}).get("code") for x in results] == [
        None, "validation_error", "not_found", "not_found", "validation_error", "insufficient_funds", None,
    ]  # fmt: skip
    assert results[1]["error"]["errors"][0]["field"] == "amount"
    assert results[5]["error"]["status"] == 409 and "transfer" not in results[5]
    assert (body["posted"], body["refused"], body["totals"]) == (2, 5, [{"amount": "10.00", "currency": "NGN"}])
    assert (posted(alice, a), posted(bob, b)) == (Decimal("0"), Decimal("13"))
    [bulk] = audit(owner_conn, me(alice), "transfer.batch_completed")
    assert [x["index"] for x in bulk["metadata"]["refused_items"]] == [1, 2, 3, 4, 5]
    with owner_conn.cursor() as cur:
        cur.execute("SELECT mode, item_count, posted_count FROM transfer_batches WHERE id = %s", (body["id"],))
        assert cur.fetchone() == ("independent", 7, 2)


def test_an_independent_batch_whose_every_item_is_refused_moves_nothing(wallet, owner_conn, ledger_clean):
    alice, a = wallet("NGN", "1.00")
    _, b = wallet("NGN")
    before = state(owner_conn, a, b)[:2]

    r = batch(alice, "independent", [item(a, b, "2.00"), item(a, b, "-1")])

    assert r.status_code == 201, r.text
    assert [x["error"]["code"] for x in r.json()["results"]] == ["insufficient_funds", "validation_error"]
    assert state(owner_conn, a, b)[:2] == before


# -- locks, replay, size ----------------------------------------------------------------------------


def deadlocks(owner_conn) -> int:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return int(cur.fetchone()[0])


def test_two_overlapping_batches_in_opposite_order_do_not_deadlock(wallet, owner_conn, ledger_clean):
    # Without the locks taken up front, alice's batch holds a1+b1 and waits for a2+b2 while
    # bob's holds a2+b2 and waits for a1+b1: a deadlock (which the retry would then hide).
    alice, a1 = wallet("NGN", "1000.00")
    _, a2 = wallet("NGN", "1000.00", client=alice)
    bob, b1 = wallet("NGN", "1000.00")
    _, b2 = wallet("NGN", "1000.00", client=bob)
    rounds, size = 8, 20
    start = deadlocks(owner_conn)
    outcomes: list[int] = []

    def send(client, items) -> None:
        barrier.wait()
        outcomes.append(batch(client, "atomic", items).status_code)

    for _ in range(rounds):
        barrier = threading.Barrier(2)
        forward = [item(a1, b1), item(a2, b2)] * (size // 2)
        backward = [item(b2, a2), item(b1, a1)] * (size // 2)
        threads = [threading.Thread(target=send, args=(alice, forward)),
                   threading.Thread(target=send, args=(bob, backward))]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert outcomes == [201] * (2 * rounds)
    assert posted(alice, a1) + posted(alice, a2) == Decimal("2000") == posted(bob, b1) + posted(bob, b2)
    time.sleep(1.5)  # backends report their statistics at most once a second
    assert deadlocks(owner_conn) == start


def test_replaying_the_batch_key_replays_the_result_and_moves_nothing_again(wallet, owner_conn, ledger_clean):
    alice, a = wallet("NGN", "5.00")
    _, b = wallet("NGN")
    key = str(uuid.uuid4())
    items = [item(a, b, "2.00"), item(a, b, "9.00"), item(a, b, "3.00")]

    first = batch(alice, "independent", items, key=key)
    moved = state(owner_conn, a, b)
    again = batch(alice, "independent", items, key=key)
    other = batch(alice, "independent", items[:2], key=key)

    assert first.status_code == 201 and [x["status"] for x in first.json()["results"]] == [
        "posted", "refused", "posted",
    ]  # fmt: skip
    assert (again.status_code, again.text, again.headers.get("Idempotent-Replayed")) == (201, first.text, "true")
    assert state(owner_conn, a, b) == moved
    assert_problem(other, 422, "idempotency_key_reused")
    assert_problem(batch(alice, "atomic", items, key=None), 400, "idempotency_key_required")


def test_a_thousand_transfers_post_in_one_request_and_replay(wallet, owner_conn, ledger_clean):
    alice, a = wallet("NGN", "10000.00")
    payees = [wallet("NGN")[1] for _ in range(10)]
    items = [item(a, payees[i % 10], "1.00", description=f"payroll line {i}") for i in range(1000)]
    key = str(uuid.uuid4())
    size = len(json.dumps({"mode": "atomic", "transfers": items}))
    assert size > 64 * 1024  # over the default limit: the route's own applies

    started = time.perf_counter()
    first = batch(alice, "atomic", items, key=key)
    took = time.perf_counter() - started
    again = batch(alice, "atomic", items, key=key)

    assert first.status_code == 201, first.text[:500]
    assert first.json()["posted"] == 1000 and took < 20
    assert again.text == first.text and again.headers.get("Idempotent-Replayed") == "true"
    assert posted(alice, a) == Decimal("9000")
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM transactions WHERE metadata->>'batch_id' = %s AND kind = 'transfer'",
            (first.json()["id"],),
        )
        assert cur.fetchone()[0] == 1000


# -- hostile input ----------------------------------------------------------------------------------


def test_hostile_batches_are_clear_4xx_and_change_nothing(wallet, owner_conn):
    alice, a = wallet("NGN", "100.00")
    _, b = wallet("NGN")
    before = state(owner_conn, a, b)

    too_many = assert_problem(batch(alice, "atomic", [item(a, b)] * 1001), 422, "validation_error")
    assert any(e["field"].startswith("transfers") for e in too_many["errors"])
    assert_problem(batch(alice, "atomic", []), 422, "validation_error")
    assert_problem(batch(alice, "sometimes", [item(a, b)]), 422, "validation_error")
    assert_problem(alice.post(PATH, json={"transfers": [item(a, b)]}, idempotency_key=True), 422, "validation_error")
    number = assert_problem(batch(alice, "atomic", [item(a, b), {**item(a, b), "amount": 1}]), 422, "validation_error")
    assert number["errors"][0]["field"].startswith("transfers.1.amount")
    assert_problem(batch(alice, "atomic", [{**item(a, b), "extra": "field"}]), 422, "validation_error")
    assert_problem(batch(alice, "atomic", [{**item(a, b), "from_account_id": "not-a-uuid"}]), 422, "validation_error")
    # Over the route's own limit (1 MB): refused by the input gate before anything parses it.
    huge = [item(a, b, description="x" * (1024 * 1024))]
    assert_problem(batch(alice, "atomic", huge), 413, "payload_too_large")
    assert state(owner_conn, a, b) == before


def test_the_default_body_limit_still_holds_on_other_routes(wallet):
    alice, a = wallet("NGN", "100.00")
    _, b = wallet("NGN")
    r = alice.post("/v1/transfers", json=item(a, b, description="x" * 70_000), idempotency_key=True)
    assert_problem(r, 413, "payload_too_large")


# -- a crash midway, velocity ----------------------------------------------------------------------


def test_a_crash_midway_leaves_no_trace_and_the_retry_runs_once(wallet, owner_conn, ledger_clean):
    alice, a = wallet("NGN", "100.00")
    _, b = wallet("NGN")
    marker = f"crash-{uuid.uuid4().hex[:8]}"
    items = [item(a, b, "1.00"), item(a, b, "2.00"), item(a, b, "3.00", description=marker), item(a, b, "4.00")]
    key = str(uuid.uuid4())
    before = state(owner_conn, a, b)

    with posting_fault(owner_conn, marker):
        crashed = batch(alice, "atomic", items, key=key)
        assert_problem(crashed, 500, "internal_error")
        assert "secret internals" not in crashed.text
        assert state(owner_conn, a, b) == before  # the items before the crash are gone with it
        retry = batch(alice, "atomic", items, key=key)

    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert posted(alice, a) == Decimal("90")


def test_velocity_counts_the_items_of_a_batch(wallet, owner_conn, monkeypatch):
    from ledgerline import config

    alice, a = wallet("NGN", "100.00")
    _, b = wallet("NGN")
    monkeypatch.setenv("LEDGERLINE_VELOCITY", "20/60s")
    config.settings.cache_clear()
    try:
        over = batch(alice, "independent", [item(a, b)] * 21)
        full = batch(alice, "independent", [item(a, b)] * 20)
        one_more = alice.post("/v1/transfers", json=item(a, b), idempotency_key=True)
    finally:
        monkeypatch.undo()  # before the requests below, or they would cache the limit for later tests
        config.settings.cache_clear()

    problem = assert_problem(over, 429, "rate_limited")
    assert "more than 20 transfers" in problem["detail"] and int(over.headers["Retry-After"]) >= 1
    assert full.status_code == 201, full.text
    assert_problem(one_more, 429, "rate_limited")
    assert posted(alice, a) == Decimal("80")


# -- the same refusals as POST /v1/transfers --------------------------------------------------------


def test_each_item_is_refused_word_for_word_as_a_single_transfer(wallet, admin):
    from ledgerline import ledger
    from ledgerline.db import transaction
    from ledgerline.ledger.testing import TEST_ADMIN

    alice, a = wallet("NGN", "10.00")
    _, own_frozen = wallet("NGN", "10.00", client=alice)
    _, own_usd = wallet("USD", "10.00", client=alice)
    _, b = wallet("NGN", "1.00")
    _, frozen = wallet("NGN")
    _, usd = wallet("USD")
    _, closed = wallet("NGN")
    for account in (own_frozen, frozen):
        assert admin.post(f"/v1/admin/accounts/{account}/freeze", json={"reason": "review"}).status_code == 200
    transaction(lambda cur: ledger.close(cur, closed, actor=TEST_ADMIN, reason="closed by the customer"))
    cases = [
        item(a, b, "10.01"),  # insufficient funds
        item(a, frozen),  # another's frozen wallet: "cannot receive this transfer"
        item(a, closed),  # another's closed wallet: the same
        item(a, usd),  # another's wallet in another currency: the same
        item(own_frozen, b),  # the caller's own frozen wallet: its status said
        item(a, own_usd),  # the caller's own wallet in another currency: said
        item(own_usd, a, currency="USD"),  # the credited own wallet holds NGN
        item(b, a),  # another's wallet to debit: not found
        item(a, str(uuid.uuid4())),  # no such wallet
        item(a, b, "1.234"),  # too many decimals
    ]

    answers = batch(alice, "independent", cases).json()["results"]

    for case, answer in zip(cases, answers, strict=True):
        single = alice.post("/v1/transfers", json=case, idempotency_key=True)
        assert single.status_code >= 400, (case, single.text)
        expected = single.json()
        assert answer["status"] == "refused", (case, answer)
        got = answer["error"]
        assert (got["status"], got["code"], got["detail"]) == (
            expected["status"], expected["code"], expected["detail"],
        ), case  # fmt: skip
        assert got.get("errors") == expected.get("errors"), case


# -- racing on the same account and key -------------------------------------------------------------


def test_batches_and_single_transfers_racing_on_one_wallet_never_overdraw_it(wallet, owner_conn, ledger_clean):
    alice, a = wallet("NGN", "100.00")
    bob, b = wallet("NGN")
    carol, c = wallet("NGN")
    barrier = threading.Barrier(8)
    answers: list[Any] = []

    refused: list[Any] = []

    def batches() -> None:
        barrier.wait()
        r = batch(alice, "independent", [item(a, b, "3.00"), item(a, c, "3.00")] * 3)
        if r.status_code == 201:
            answers.append([x["status"] for x in r.json()["results"]])
        else:  # a whole batch turned away (kept, and checked below: never a server error)
            refused.append((r.status_code, r.headers.get("Content-Type"), r.text))

    def singles() -> None:
        barrier.wait()
        for _ in range(3):
            r = alice.post("/v1/transfers", json=item(a, c, "3.00"), idempotency_key=True)
            answers.append(["posted" if r.status_code == 201 else r.json()["code"]])

    threads = [threading.Thread(target=batches) for _ in range(5)] + [
        threading.Thread(target=singles) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Under load a batch may be told to come back (429/503, problem+json), never a 5xx error.
    assert all(s in (429, 503) and t.startswith("application/problem+json") for s, t, _ in refused), refused
    moved = sum(flat == "posted" for row in answers for flat in row)
    assert moved == 33  # 100.00 holds 33 transfers of 3.00, whoever wins them
    assert posted(alice, a) == Decimal("1.00")
    assert posted(bob, b) + posted(carol, c) == Decimal("99.00")


def test_the_same_batch_sent_twice_at_once_runs_once(wallet, owner_conn, ledger_clean):
    alice, a = wallet("NGN", "100.00")
    _, b = wallet("NGN")
    key = str(uuid.uuid4())
    items = [item(a, b, "1.00")] * 50
    barrier = threading.Barrier(4)
    answers: list[Any] = []

    def send() -> None:
        barrier.wait()
        r = batch(alice, "atomic", items, key=key)
        answers.append((r.status_code, r.headers.get("Idempotent-Replayed"), r.json().get("id")))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(replayed or "" for _, replayed, _ in answers) == ["", "true", "true", "true"]
    assert {status for status, _, _ in answers} == {201} and len({batch_id for _, _, batch_id in answers}) == 1
    assert posted(alice, a) == Decimal("50.00")


def test_a_batch_item_reverses_like_any_transfer(wallet, admin, ledger_clean):
    alice, a = wallet("NGN", "10.00")
    bob, b = wallet("NGN")
    body = batch(alice, "independent", [item(a, b, "4.00"), item(a, b, "1.00")]).json()
    first = body["results"][0]["transfer"]

    reversed_ = admin.post(f"/v1/admin/transactions/{first['id']}/reverse", json={"reason": "sent in error"},
                           idempotency_key=True)  # fmt: skip

    assert reversed_.status_code == 201, reversed_.text
    assert alice.get(f"/v1/transfers/{first['id']}").json()["reversed_by"] == reversed_.json()["id"]
    assert (posted(alice, a), posted(bob, b)) == (Decimal("9"), Decimal("1"))


def test_a_merchant_key_with_transfers_write_pays_a_batch_and_one_without_cannot(make_user, wallet, admin, owner_conn):
    merchant = make_user("merchant")
    till = merchant["client"].post("/v1/accounts", json={"currency": "NGN"}).json()["id"]
    funded = admin.post("/v1/admin/adjustments", idempotency_key=True, json={
        "account_id": till, "amount": "50.00", "currency": "NGN", "direction": "credit", "reason": "test funds"})  # fmt: skip
    assert funded.status_code == 201, funded.text
    staff = [wallet("NGN")[1] for _ in range(3)]
    keys = {}
    for scope in ("transfers:write", "transfers:read"):
        r = merchant["client"].post("/v1/api-keys", json={"name": scope, "scopes": [scope]})
        keys[scope] = r.json()["key"]
    items = [item(till, s, "10.00") for s in staff]

    refused = merchant["client"].post(PATH, token=keys["transfers:read"], idempotency_key=True,
                                      json={"mode": "atomic", "transfers": items})  # fmt: skip
    paid = merchant["client"].post(PATH, token=keys["transfers:write"], idempotency_key=True,
                                   json={"mode": "atomic", "transfers": items})  # fmt: skip

    assert_problem(refused, 403, "forbidden")
    assert paid.status_code == 201, paid.text
    assert posted(merchant["client"], till) == Decimal("20.00")
    with owner_conn.cursor() as cur:
        cur.execute("SELECT actor_type, owner_id FROM transfer_batches WHERE id = %s", (paid.json()["id"],))
        assert cur.fetchone() == ("api_key", uuid.UUID(str(merchant["id"])))
