"""GET /v1/admin/audit over HTTP: administrators and auditors (with their second factor)
read the raw trail, filtered by actor, action, resource, IP and time, a page at a time;
every read writes one audit row with its filters; bad filters are 422 and write nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest


@pytest.fixture(scope="module")
def story(wallet):
    """Alice sends Bob 12.34; returns their ids, wallets and the transfer."""
    alice, a = wallet("NGN", "100.00")
    bob, b = wallet("NGN")
    r = alice.post(
        "/v1/transfers",
        idempotency_key=True,
        json={"from_account_id": a, "to_account_id": b, "amount": "12.34", "currency": "NGN"},
    )
    assert r.status_code == 201, r.text
    ids = {"alice": alice.get("/v1/me").json()["id"], "bob": bob.get("/v1/me").json()["id"]}
    return {"ids": ids, "a": a, "b": b, "transfer": r.json()}


def read(client, **params):
    r = client.get("/v1/admin/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def reads_by(owner_conn, actor_id) -> list[dict]:
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT actor_type, metadata FROM audit_log WHERE action = 'audit.report_generated' AND actor_id = %s"
            " ORDER BY occurred_at",
            (actor_id,),
        )
        return [{"actor_type": t, "metadata": m} for t, m in cur.fetchall()]


def test_one_transfer_with_its_raw_payloads(auditor, story):
    body = read(auditor, action="transfer.completed", resource_id=story["transfer"]["id"])
    assert len(body["items"]) == 1 and body["next_cursor"] is None
    row = body["items"][0]
    assert set(row) == {
        "id", "at", "actor_id", "actor_type", "actor_ip", "action", "resource_type", "resource_id",
        "payload_before", "payload_after", "metadata", "country", "city",
    }  # fmt: skip
    assert (row["country"], row["city"]) == (None, None)  # a place is shown for authentication events only
    assert (row["actor_id"], row["actor_type"], row["resource_type"]) == (story["ids"]["alice"], "user", "transfer")
    # Raw: both sides' balances, as the row holds them.
    assert row["payload_after"]["balances"] == {story["a"]: "87.6600", story["b"]: "12.3400"}
    assert row["actor_ip"] == "127.0.0.1"


def test_filter_by_actor_returns_that_actors_rows_only(admin, story):
    alice = story["ids"]["alice"]
    items = read(admin, actor_id=alice, limit=200)["items"]
    assert items and {i["actor_id"] for i in items} == {alice}
    assert "transfer.completed" in {i["action"] for i in items}
    assert read(admin, actor_id=str(uuid.uuid4()))["items"] == []


def test_filter_by_resource_type_ip_and_time(auditor, story):
    now = datetime.now(UTC)
    recent = read(
        auditor, resource_type="transfer", ip="127.0.0.0/8", **{"from": (now - timedelta(hours=1)).isoformat()}
    )
    assert story["transfer"]["id"] in {i["resource_id"] for i in recent["items"]}
    assert {i["resource_type"] for i in recent["items"]} == {"transfer"}
    assert read(auditor, resource_type="transfer", ip="203.0.113.7")["items"] == []
    assert read(auditor, resource_type="transfer", to=(now - timedelta(days=3650)).isoformat())["items"] == []
    exact = read(auditor, ip="127.0.0.1", action="transfer.completed", resource_id=story["transfer"]["id"])
    assert len(exact["items"]) == 1


def test_paging_walks_every_row_once(admin, story):
    alice = story["ids"]["alice"]
    whole = read(admin, actor_id=alice, limit=200)["items"]
    assert len(whole) >= 2  # her wallet opened, her transfer
    seen, cursor = [], None
    while True:
        page = read(admin, actor_id=alice, limit=1, **({"cursor": cursor} if cursor else {}))
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [i["id"] for i in whole]


def test_each_read_is_audited_once_with_its_filters(auditor, owner_conn, story):
    me = auditor.get("/v1/me").json()["id"]
    before = len(reads_by(owner_conn, me))
    read(auditor, action="transfer.completed", ip="127.0.0.1", limit=3)
    after = reads_by(owner_conn, me)
    assert len(after) == before + 1
    last = after[-1]
    assert last["actor_type"] == "auditor"
    assert last["metadata"]["filters"] == {"action": "transfer.completed", "ip": "127.0.0.1/32"}
    assert last["metadata"]["limit"] == 3 and last["metadata"]["returned"] <= 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"actor_id": "not-a-uuid"}, "actor_id"),
        ({"actor_id": "' OR 1=1 --"}, "actor_id"),
        ({"ip": "999.1.1.1"}, "ip"),
        ({"ip": "localhost"}, "ip"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2024-05-01T12:00:00"}, "from"),  # no zone
        ({"to": "0001-01-01T00:00:00+14:00"}, "to"),  # before year 1 in UTC
        ({"from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"}, "to"),
        ({"action": "DROP TABLE audit_log"}, "action"),
        ({"action": "transfer"}, "action"),
        ({"resource_type": "a" * 300}, "resource_type"),
        ({"resource_id": "x" * 201}, "resource_id"),
        ({"cursor": "bogus!"}, "cursor"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_filters_are_422_and_write_nothing(auditor, owner_conn, params, field):
    me = auditor.get("/v1/me").json()["id"]
    before = len(reads_by(owner_conn, me))
    r = auditor.get("/v1/admin/audit", params=params)
    assert r.status_code == 422, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "validation_error"
    assert field in r.text
    assert len(reads_by(owner_conn, me)) == before


def test_users_and_merchants_are_refused(person, story):
    for role in ("user", "merchant"):
        r = person(role).get("/v1/admin/audit")
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "forbidden"


def test_an_auditor_without_the_second_factor_is_refused(make_user, owner_conn):
    user = make_user("auditor")  # a password-only session
    r = user["client"].get("/v1/admin/audit")
    assert r.status_code in (401, 403), r.text
    assert reads_by(owner_conn, user["id"]) == []


def test_no_token_is_401(client):
    assert client.get("/v1/admin/audit").status_code == 401
