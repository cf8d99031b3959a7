"""Merchant webhook endpoints over HTTP: register (secret once), list, delete, the
delivery log; merchants only, their own endpoints only, API keys by scope."""

from __future__ import annotations

import uuid

import pytest

from ledgerline.db import transaction
from ledgerline.webhooks import events


@pytest.fixture
def merchant(make_user, aws_endpoint):
    return make_user("merchant")


def _register(client, url="http://127.0.0.1:9/hook", types=("payment.succeeded",)):
    r = client.post("/v1/webhook-endpoints", json={"url": url, "events": list(types)})
    assert r.status_code == 201, r.text
    return r.json()


def _audits(endpoint_id):
    def read(cur):
        cur.execute(
            "SELECT action, coalesce(payload_before::text, '') || coalesce(payload_after::text, '') AS payloads"
            " FROM audit_log WHERE resource_id = %s ORDER BY occurred_at",
            (endpoint_id,),
        )
        return cur.fetchall()

    return transaction(read)


def test_register_list_and_delete(merchant):
    client = merchant["client"]
    created = _register(client, types=["withdrawal.paid", "payment.succeeded", "payment.succeeded"])

    assert set(created) == {"id", "url", "events", "created_at", "secret"}
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["payment.succeeded", "withdrawal.paid"]
    listed = client.get("/v1/webhook-endpoints").json()
    assert listed["next_cursor"] is None
    assert listed["items"] == [{k: v for k, v in created.items() if k != "secret"}]

    assert client.delete(f"/v1/webhook-endpoints/{created['id']}").status_code == 204
    assert client.delete(f"/v1/webhook-endpoints/{created['id']}").status_code == 204  # gone already: no change
    assert client.get("/v1/webhook-endpoints").json()["items"] == []
    audits = _audits(created["id"])
    assert [a["action"] for a in audits] == ["webhook_endpoint.created", "webhook_endpoint.deleted"]
    assert all(created["secret"] not in (a["payloads"] or "") for a in audits)


def test_the_list_pages_with_the_one_paginator(merchant):
    client = merchant["client"]
    ids = [_register(client)["id"] for _ in range(3)]

    first = client.get("/v1/webhook-endpoints", params={"limit": 2}).json()
    second = client.get("/v1/webhook-endpoints", params={"limit": 2, "cursor": first["next_cursor"]}).json()

    assert [e["id"] for e in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    bad = client.get("/v1/webhook-endpoints", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"


def test_the_delivery_log_over_http(merchant):
    client = merchant["client"]
    endpoint = _register(client)  # nothing listens on port 9: the attempt fails, and is logged
    from ledgerline.webhooks import delivery

    transaction(lambda cur: events.emit(cur, merchant["id"], "payment.succeeded", {"payment_id": "p-9"}))

    def pending(cur):
        cur.execute("SELECT id FROM webhook_deliveries WHERE endpoint_id = %s", (endpoint["id"],))
        return cur.fetchone()["id"]

    delivery.attempt(transaction(pending))
    log = client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")

    assert log.status_code == 200, log.text
    [item] = log.json()["items"]
    assert log.json()["next_cursor"] is None
    assert item["event_type"] == "payment.succeeded" and item["status"] == "pending"
    [attempt] = item["attempts"]
    assert attempt["attempt"] == 1 and attempt["outcome"] == "failed" and attempt["status_code"] is None
    assert attempt["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1/x", "events": ["payment.exploded"]}, "events"),
        ({"url": "ftp://127.0.0.1/x", "events": ["payment.succeeded"]}, "url"),
        ({"url": "http://127.0.0.1/x", "events": []}, "events"),
        ({"url": "http://127.0.0.1/x"}, "events"),
        ({"url": "http://127.0.0.1/x", "events": ["payment.succeeded"], "secret": "mine"}, "secret"),
    ],
)
def test_bad_registrations_are_422_and_change_nothing(merchant, body, field):
    client = merchant["client"]
    r = client.post("/v1/webhook-endpoints", json=body)

    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert field in r.text
    assert client.get("/v1/webhook-endpoints").json()["items"] == []


def test_only_merchants_have_endpoints(make_user):
    user = make_user("user")["client"]

    r = user.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1/x", "events": ["payment.succeeded"]})

    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_another_merchants_endpoint_is_404_and_untouched(merchant, make_user):
    mine = _register(merchant["client"])
    mallory = make_user("merchant")["client"]

    for method, path in (
        ("DELETE", f"/v1/webhook-endpoints/{mine['id']}"),
        ("GET", f"/v1/webhook-endpoints/{mine['id']}/deliveries"),
        ("DELETE", f"/v1/webhook-endpoints/{uuid.uuid4()}"),
        ("GET", "/v1/webhook-endpoints/not-a-uuid/deliveries"),
    ):
        r = mallory.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["code"] == "not_found"
    assert mallory.get("/v1/webhook-endpoints").json()["items"] == []
    assert [e["id"] for e in merchant["client"].get("/v1/webhook-endpoints").json()["items"]] == [mine["id"]]


def test_api_keys_reach_the_routes_of_their_scope(merchant, client):
    r = merchant["client"].post("/v1/api-keys", json={"name": "hooks", "scopes": ["webhooks:read"]})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    _register(merchant["client"])

    assert client.get("/v1/webhook-endpoints", token=key).status_code == 200
    r = client.post(
        "/v1/webhook-endpoints", token=key, json={"url": "http://127.0.0.1/x", "events": ["payment.succeeded"]}
    )
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
