"""GET /v1/activity over HTTP: a user's own events as sentences, found by actor or
subject; another user's events and data never appear (BOLA); category filter, paging,
hostile input."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import session_token


def feed(client, **params):
    r = client.get("/v1/activity", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def everything(client, **params):
    """Every item of the feed, page by page."""
    items, cursor = [], None
    while True:
        page = feed(client, **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def me(client):
    return client.get("/v1/me").json()["id"]


def transfer(client, a, b, amount):
    r = client.post(
        "/v1/transfers",
        idempotency_key=True,
        json={"from_account_id": a, "to_account_id": b, "amount": amount, "currency": "NGN"},
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def pair(wallet):
    """Alice (1,000.00) sends 123.45 to Bob (50.00): balances 876.55 and 173.45."""
    alice, a = wallet("NGN", "1000.00")
    bob, b = wallet("NGN", "50.00")
    sent = transfer(alice, a, b, "123.45")
    return alice, a, bob, b, sent


def test_the_sender_and_the_recipient_each_see_their_side_in_plain_sentences(pair):
    alice, _, bob, _, _ = pair

    alice_says = [i["message"] for i in everything(alice) if i["action"] == "transfer.completed"]
    bob_says = [i["message"] for i in everything(bob) if i["action"] == "transfer.completed"]

    assert alice_says == ["You sent NGN 123.45 to another wallet"]
    assert bob_says == ["Wallet credited NGN 123.45 (transfer received)"]
    assert "Wallet credited NGN 50.00 (adjustment)" in [i["message"] for i in everything(bob)]
    assert "Wallet credited NGN 1,000.00 (adjustment)" in [i["message"] for i in everything(alice)]


def test_items_have_the_contract_shape_newest_first(pair):
    alice = pair[0]
    items = everything(alice)
    assert items and all(set(i) == {"id", "at", "category", "action", "message"} for i in items)
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    assert all(i["at"].endswith("Z") for i in items)


def test_neither_side_sees_the_other_sides_balances_or_payloads(pair):
    alice, a, bob, b, _ = pair
    alice_text, bob_text = json.dumps(everything(alice)), json.dumps(everything(bob))
    # The transfer's audit row holds both balances after it: 876.55 (Alice) and 173.45 (Bob).
    assert "173.45" not in alice_text and "173.4" not in alice_text
    assert "876.55" not in bob_text and "876.5" not in bob_text
    # Nor the other side's account id (it is in the row's entries and balances).
    assert b not in alice_text and a not in bob_text


def test_another_users_events_never_appear(pair, person):
    alice, _, bob, _, _ = pair
    carol = person()
    carol.post("/v1/accounts", json={"currency": "NGN"})
    carols = {i["id"] for i in everything(carol)}
    assert carols, "Carol's own wallet opening is in her feed"
    assert not carols & {i["id"] for i in everything(alice)}
    assert not carols & {i["id"] for i in everything(bob)}
    # The transfer is in both parties' feeds, once each, and in nobody else's.
    alice_ids = {i["id"] for i in everything(alice) if i["action"] == "transfer.completed"}
    bob_ids = {i["id"] for i in everything(bob) if i["action"] == "transfer.completed"}
    assert alice_ids == bob_ids and len(alice_ids) == 1


def test_a_refused_transfer_is_in_the_senders_feed_only(wallet, person):
    alice, a = wallet("NGN", "10.00")
    bob, b = wallet("NGN")
    r = alice.post(
        "/v1/transfers",
        idempotency_key=True,
        json={"from_account_id": a, "to_account_id": b, "amount": "99.00", "currency": "NGN"},
    )
    assert r.status_code == 409 and r.json()["code"] == "insufficient_funds", r.text
    failed = [i["message"] for i in everything(alice) if i["action"] == "transfer.failed"]
    assert failed == [f"Your transfer did not go through ({r.json()['code'].replace('_', ' ')})"]
    assert not [i for i in everything(bob) if i["action"] == "transfer.failed"]


def test_category_filter(pair):
    alice = pair[0]
    financial = everything(alice, category="financial")
    assert financial and {i["category"] for i in financial} == {"financial"}
    assert {i["id"] for i in financial} == {i["id"] for i in everything(alice) if i["category"] == "financial"}
    assert everything(alice, category="escrow") == []


def test_paging_walks_every_item_once(pair):
    alice = pair[0]
    whole = feed(alice, limit=200)["items"]
    assert len(whole) >= 3
    paged = everything(alice, limit=1)
    assert [i["id"] for i in paged] == [i["id"] for i in whole]


@pytest.mark.parametrize(
    "params",
    [
        {"category": "everything"},
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "ten"},
        {"cursor": "not-a-cursor!"},
        {"cursor": "MjAyNC0wMS0wMXx4"},  # base64url of a cursor this API did not write
    ],
)
def test_bad_parameters_are_422(pair, params):
    r = pair[0].get("/v1/activity", params=params)
    assert r.status_code == 422, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["code"] == "validation_error"


def test_no_token_no_feed(client):
    r = client.get("/v1/activity")
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"


def test_an_administrators_decision_is_in_the_owners_feed(admin, wallet):
    owner, account = wallet("NGN")
    assert admin.post(f"/v1/admin/accounts/{account}/freeze", json={"reason": "checks"}).status_code == 200
    messages = [i["message"] for i in everything(owner) if i["action"] == "admin.account.frozen"]
    assert messages == ["Your wallet was frozen"]
    assert "You froze a wallet" in [i["message"] for i in feed(admin, limit=5)["items"]]


def test_a_suspension_and_its_end_are_in_the_users_feed_and_the_admins_as_their_doing(admin, make_user):
    """Python-written rows (ledgerline.audit.record): a row about a user has that user as subject."""
    user = make_user("user")
    for status in ("suspended", "active"):
        r = admin.patch(f"/v1/admin/users/{user['id']}", json={"status": status})
        assert r.status_code == 200, r.text
    fresh = user["client"].as_user(session_token(user["id"], "user"))  # suspension ended the old session
    mine = [i["message"] for i in everything(fresh) if i["action"].startswith("user.")]
    assert mine[:2] == ["Your account was reactivated", "Your account was suspended"]
    theirs = [i["message"] for i in feed(admin, limit=10)["items"] if i["action"].startswith("user.")]
    assert theirs[:2] == ["You reactivated a user", "You suspended a user"]
