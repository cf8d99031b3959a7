"""Merchant API keys over HTTP: scoped, revocable, audited as the key."""

from ledgerline.db import transaction


def _create_key(merchant, scopes):
    r = merchant["client"].post("/v1/api-keys", json={"name": "server", "scopes": scopes})
    assert r.status_code == 201, r.text
    body = r.json()
    return body["id"], body["key"]  # the secret, shown this once


def test_a_key_calls_the_routes_of_its_scopes_and_is_audited_as_an_api_key(make_user, client):
    merchant = make_user("merchant")
    _, key = _create_key(merchant, ["accounts:write"])

    r = client.post("/v1/accounts", token=key, json={"currency": "NGN", "name": "till"})

    assert r.status_code == 201, r.text
    account_id = r.json()["id"]

    def actor_types(cur):
        cur.execute("SELECT actor_type, actor_id FROM audit_log WHERE resource_id = %s", (account_id,))
        return {(row["actor_type"], str(row["actor_id"])) for row in cur.fetchall()}

    assert ("api_key", str(merchant["id"])) in transaction(actor_types)


def test_a_key_cannot_call_outside_its_scopes(make_user, client):
    merchant = make_user("merchant")
    _, key = _create_key(merchant, ["accounts:read"])

    r = client.post("/v1/accounts", token=key, json={"currency": "NGN"})

    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"


def test_a_revoked_key_stops_working_at_once(make_user, client):
    merchant = make_user("merchant")
    key_id, key = _create_key(merchant, ["accounts:read"])
    assert client.get("/v1/accounts", token=key).status_code == 200

    assert merchant["client"].delete(f"/v1/api-keys/{key_id}").status_code == 204

    r = client.get("/v1/accounts", token=key)
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"


def test_a_made_up_key_is_refused(client):
    r = client.get("/v1/accounts", token="llk_deadbeef_" + "x" * 40)

    assert r.status_code == 401
