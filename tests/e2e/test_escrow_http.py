"""Escrow over HTTP: a buyer opens and funds an escrow, releases it to the seller (less the
fee) or the seller refunds it, either disputes it and an administrator resolves it; who
sees and lists what; the 409 of a refused edge carries allowed_transitions through the
Endpoint and its stored replay; hostile input is a clear 4xx that changes nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest


@pytest.fixture(scope="module")
def deal(admin, person, wallet) -> dict[str, Any]:
    buyer, buyer_wallet = wallet("NGN", "500.00")
    seller, seller_wallet = wallet("NGN")
    stranger, stranger_wallet = wallet("NGN", "500.00")
    return {
        "admin": admin,
        "buyer": buyer,
        "seller": seller,
        "stranger": stranger,
        "buyer_wallet": buyer_wallet,
        "seller_wallet": seller_wallet,
        "stranger_wallet": stranger_wallet,
        "seller_id": seller.get("/v1/me").json()["id"],
        "buyer_id": buyer.get("/v1/me").json()["id"],
    }


def available(client, account_id) -> str:
    return client.get(f"/v1/accounts/{account_id}").json()["balance"]["available"]["amount"]


def open_escrow(d, amount="100.00") -> dict[str, Any]:
    r = d["buyer"].post("/v1/escrows", idempotency_key=True, json={
        "seller_id": d["seller_id"], "amount": amount, "currency": "NGN", "description": "a desk"})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def fund(d, escrow) -> dict[str, Any]:
    r = d["buyer"].post(
        f"/v1/escrows/{escrow['id']}/fund", idempotency_key=True, json={"account_id": d["buyer_wallet"]}
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_open_fund_release_pays_the_seller(deal):
    buyer_before = available(deal["buyer"], deal["buyer_wallet"])
    escrow = open_escrow(deal, "100.00")
    assert escrow["status"] == "AWAITING_PAYMENT" and escrow["allowed_transitions"] == ["FUNDED"]
    assert escrow["buyer_id"] == deal["buyer_id"] and escrow["seller_id"] == deal["seller_id"]
    assert escrow["amount"] == {"amount": "100.00", "currency": "NGN"}

    funded = fund(deal, escrow)
    assert funded["status"] == "FUNDED" and funded["allowed_transitions"] == ["DISPUTED", "RELEASED"]
    assert Decimal(available(deal["buyer"], deal["buyer_wallet"])) == Decimal(buyer_before) - 100
    # The seller sees it too, with what the seller may do.
    seen = deal["seller"].get(f"/v1/escrows/{escrow['id']}")
    assert seen.status_code == 200 and seen.json()["allowed_transitions"] == ["DISPUTED", "REFUNDED"]

    released = deal["buyer"].post(f"/v1/escrows/{escrow['id']}/release", idempotency_key=True)
    assert released.status_code == 200, released.text
    body = released.json()
    assert body["status"] == "RELEASED" and body["allowed_transitions"] == []
    fee, paid = body["fee"]["amount"], body["seller_amount"]["amount"]
    assert Decimal(fee) + Decimal(paid) == Decimal("100.00")
    assert available(deal["seller"], deal["seller_wallet"]) == paid
    # The escrow's account is nobody's: not in either party's accounts, closed, at zero.
    for client in (deal["buyer"], deal["seller"]):
        assert escrow["account_id"] not in [a["id"] for a in client.get("/v1/accounts").json()["items"]]
        assert client.get(f"/v1/accounts/{escrow['account_id']}").status_code == 404


def test_a_refused_edge_is_409_with_the_callers_allowed_transitions_also_when_replayed(deal):
    escrow = fund(deal, open_escrow(deal, "10.00"))
    key = str(uuid.uuid4())

    first = deal["buyer"].post(f"/v1/escrows/{escrow['id']}/refund", idempotency_key=key)
    again = deal["buyer"].post(f"/v1/escrows/{escrow['id']}/refund", idempotency_key=key)

    assert first.status_code == 409 and first.headers["Content-Type"].startswith("application/problem+json")
    problem = first.json()
    assert problem["code"] == "invalid_state_transition"
    assert problem["allowed_transitions"] == ["DISPUTED", "RELEASED"]
    assert (again.status_code, again.text, again.headers.get("Idempotent-Replayed")) == (409, first.text, "true")
    assert deal["buyer"].get(f"/v1/escrows/{escrow['id']}").json()["status"] == "FUNDED"


def test_the_seller_refunds_to_the_wallet_that_paid(deal):
    before = available(deal["buyer"], deal["buyer_wallet"])
    escrow = fund(deal, open_escrow(deal, "25.00"))

    refunded = deal["seller"].post(f"/v1/escrows/{escrow['id']}/refund", idempotency_key=True)

    assert refunded.status_code == 200 and refunded.json()["status"] == "REFUNDED"
    assert available(deal["buyer"], deal["buyer_wallet"]) == before
    again = deal["buyer"].post(f"/v1/escrows/{escrow['id']}/release", idempotency_key=True)
    assert again.status_code == 409 and again.json()["allowed_transitions"] == []  # never released after a refund


def test_a_dispute_is_resolved_by_an_administrator(deal):
    escrow = fund(deal, open_escrow(deal, "40.00"))
    disputed = deal["seller"].post(f"/v1/escrows/{escrow['id']}/dispute", idempotency_key=True,
                                   json={"reason": "the buyer used it and wants the money back"})  # fmt: skip
    assert disputed.status_code == 200 and disputed.json()["status"] == "DISPUTED"
    assert disputed.json()["dispute"]["raised_by"] == deal["seller_id"]
    # Neither party may end it now.
    for client, action in ((deal["buyer"], "release"), (deal["seller"], "refund")):
        r = client.post(f"/v1/escrows/{escrow['id']}/{action}", idempotency_key=True)
        assert r.status_code == 409 and r.json()["allowed_transitions"] == []
    # An administrator (who sees any escrow, and may resolve it) decides.
    seen = deal["admin"].get(f"/v1/escrows/{escrow['id']}")
    assert seen.status_code == 200 and seen.json()["allowed_transitions"] == ["RESOLVED_REFUNDED", "RESOLVED_RELEASED"]
    before = available(deal["buyer"], deal["buyer_wallet"])

    resolved = deal["admin"].post(f"/v1/admin/escrows/{escrow['id']}/resolve", idempotency_key=True,
                                  json={"outcome": "refund", "reason": "the goods were not as described"})  # fmt: skip

    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "RESOLVED_REFUNDED" and body["dispute"]["outcome"] == "refund"
    assert Decimal(available(deal["buyer"], deal["buyer_wallet"])) == Decimal(before) + 40
    # A user cannot reach the administrators' route at all.
    r = deal["buyer"].post(f"/v1/admin/escrows/{escrow['id']}/resolve", idempotency_key=True,
                           json={"outcome": "release", "reason": "I decide"})  # fmt: skip
    assert r.status_code == 403


def test_a_stranger_neither_sees_nor_moves_an_escrow(deal):
    escrow = fund(deal, open_escrow(deal, "15.00"))
    awaiting = open_escrow(deal, "15.00")
    stranger = deal["stranger"]
    stranger_before = available(stranger, deal["stranger_wallet"])

    assert stranger.get(f"/v1/escrows/{escrow['id']}").status_code == 404
    assert escrow["id"] not in [e["id"] for e in stranger.get("/v1/escrows").json()["items"]]
    for action, body in (("release", None), ("refund", None), ("dispute", {"reason": "let me in please"})):
        r = stranger.post(f"/v1/escrows/{escrow['id']}/{action}", idempotency_key=True, json=body)
        assert r.status_code == 404 and r.json()["code"] == "not_found", r.text
    r = stranger.post(f"/v1/escrows/{awaiting['id']}/fund", idempotency_key=True,
                      json={"account_id": deal["stranger_wallet"]})  # fmt: skip
    assert r.status_code == 404
    assert deal["buyer"].get(f"/v1/escrows/{escrow['id']}").json()["status"] == "FUNDED"
    assert deal["buyer"].get(f"/v1/escrows/{awaiting['id']}").json()["status"] == "AWAITING_PAYMENT"
    assert available(stranger, deal["stranger_wallet"]) == stranger_before
    for path in ("/v1/escrows/not-a-uuid", f"/v1/escrows/{uuid.uuid4()}"):
        assert stranger.get(path).status_code == 404


def test_the_list_is_the_callers_as_buyer_or_seller_a_page_at_a_time(deal, person):
    buyer, seller = person(), person()
    seller_id = seller.get("/v1/me").json()["id"]
    made = []
    for i in range(3):
        r = buyer.post("/v1/escrows", idempotency_key=True, json={
            "seller_id": seller_id, "amount": f"{i + 1}.00", "currency": "NGN", "description": f"item {i}"})  # fmt: skip
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])

    for client in (buyer, seller):
        first = client.get("/v1/escrows", params={"limit": 2}).json()
        rest = client.get("/v1/escrows", params={"limit": 2, "cursor": first["next_cursor"]}).json()
        assert [e["id"] for e in first["items"] + rest["items"]] == made and rest["next_cursor"] is None
    assert buyer.get("/v1/escrows", params={"cursor": "garbage!"}).json()["code"] == "validation_error"
    assert buyer.get("/v1/escrows", params={"limit": 0}).status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": 100, "currency": "NGN", "description": "x"}, "amount"),  # a JSON number
        ({"amount": "1.001", "currency": "NGN", "description": "x"}, None),
        ({"amount": "1.00", "currency": "NGN", "description": ""}, "description"),
        ({"amount": "1.00", "currency": "NGN", "description": "x", "status": "FUNDED"}, "status"),
        ({"amount": "1.00", "currency": "NGNX", "description": "x"}, "currency"),
    ],
)
def test_a_bad_escrow_request_is_a_clear_422_that_opens_nothing(deal, body, field):
    before = deal["buyer"].get("/v1/escrows", params={"limit": 200}).json()["items"]

    r = deal["buyer"].post("/v1/escrows", idempotency_key=True, json={"seller_id": deal["seller_id"], **body})

    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    if field:
        assert field in [e["field"] for e in r.json()["errors"]]
    assert deal["buyer"].get("/v1/escrows", params={"limit": 200}).json()["items"] == before


def test_escrow_routes_need_an_idempotency_key_and_a_reason(deal):
    escrow = fund(deal, open_escrow(deal, "5.00"))
    r = deal["buyer"].post(f"/v1/escrows/{escrow['id']}/release")
    assert r.status_code == 400 and r.json()["code"] == "idempotency_key_required"
    r = deal["buyer"].post(f"/v1/escrows/{escrow['id']}/dispute", idempotency_key=True, json={"reason": "no"})
    assert r.status_code == 422 and "reason" in [e["field"] for e in r.json()["errors"]]
    r = deal["admin"].post(f"/v1/admin/escrows/{escrow['id']}/resolve", idempotency_key=True,
                           json={"outcome": "split", "reason": "half each"})  # fmt: skip
    assert r.status_code == 422
    assert deal["buyer"].get(f"/v1/escrows/{escrow['id']}").json()["status"] == "FUNDED"


def test_the_dispute_window_is_the_deployments_setting(deal, monkeypatch, owner_conn):
    from ledgerline import config

    escrow = fund(deal, open_escrow(deal, "6.00"))
    with owner_conn.cursor() as cur:  # funded three days ago
        cur.execute("UPDATE escrows SET funded_at = funded_at - interval '3 days' WHERE id = %s", (escrow["id"],))
    monkeypatch.setenv("LEDGERLINE_DISPUTE_WINDOW_DAYS", "2")
    config.settings.cache_clear()
    try:
        seen = deal["buyer"].get(f"/v1/escrows/{escrow['id']}").json()
        refused = deal["buyer"].post(f"/v1/escrows/{escrow['id']}/dispute", idempotency_key=True,
                                     json={"reason": "it broke on day three"})  # fmt: skip
        refund = deal["buyer"].post(f"/v1/escrows/{escrow['id']}/refund", idempotency_key=True)
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()
    assert seen["allowed_transitions"] == ["RELEASED"]
    assert refused.status_code == 409 and refused.json()["allowed_transitions"] == ["RELEASED"]
    assert "can no longer be disputed" in refused.json()["detail"]
    assert refund.json()["allowed_transitions"] == ["RELEASED"]  # every answer counts the window
    # With the default window (30 days) the same escrow may still be disputed.
    again = deal["buyer"].post(f"/v1/escrows/{escrow['id']}/dispute", idempotency_key=True,
                               json={"reason": "it broke on day three"})  # fmt: skip
    assert again.status_code == 200 and again.json()["status"] == "DISPUTED"


def test_twenty_releases_at_once_over_http_pay_the_seller_once(deal):
    import threading

    escrow = fund(deal, open_escrow(deal, "20.00"))
    seller_before = Decimal(available(deal["seller"], deal["seller_wallet"]))
    barrier = threading.Barrier(20)
    answers: list[Any] = []

    def release() -> None:
        barrier.wait(timeout=30)
        answers.append(deal["buyer"].post(f"/v1/escrows/{escrow['id']}/release", idempotency_key=True))

    threads = [threading.Thread(target=release) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(r.status_code for r in answers) == [200] + [409] * 19, [r.text for r in answers]
    [won] = [r.json() for r in answers if r.status_code == 200]
    assert Decimal(available(deal["seller"], deal["seller_wallet"])) - seller_before == Decimal(
        won["seller_amount"]["amount"]
    )


def test_both_parties_read_the_escrows_steps_in_their_activity(deal):
    escrow = fund(deal, open_escrow(deal, "3.00"))
    assert deal["buyer"].post(f"/v1/escrows/{escrow['id']}/release", idempotency_key=True).status_code == 200

    buyer = [i["message"] for i in deal["buyer"].get("/v1/activity", params={"category": "escrow"}).json()["items"]]
    seller = [i["message"] for i in deal["seller"].get("/v1/activity", params={"category": "escrow"}).json()["items"]]
    assert {"You opened an escrow", "You paid into an escrow", "You released an escrow to its seller"} <= set(buyer)
    assert {"An escrow was opened with you", "An escrow of yours was released to its seller"} <= set(seller)
    # Someone else's escrow is not in a stranger's feed: only their own refused attempts.
    stranger = deal["stranger"].get("/v1/activity", params={"category": "escrow"}).json()["items"]
    assert all(i["action"].endswith("_failed") for i in stranger), stranger
