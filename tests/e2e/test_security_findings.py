"""The outside probe's findings (issue 11), each reproduced over real HTTP against the
local gateway: what an attacker did, and what they get now."""

from __future__ import annotations

import uuid

import pytest

from ledgerline.auth import sessions
from tests.registration import TAKEN, mailed, register_and_verify

PASSWORD = "correct horse battery staple 9"


def login(client, email, otp=None):
    body = {"email": email, "password": PASSWORD, **({"otp": otp} if otp else {})}
    return client.post("/v1/auth/login", json=body)


def fund(admin, account_id, amount="100.00"):
    r = admin.post(
        "/v1/admin/adjustments",
        idempotency_key=True,
        json={"account_id": account_id, "amount": amount, "currency": "NGN", "direction": "credit", "reason": "funds"},
    )
    assert r.status_code == 201, r.text


# -- 1. a promoted user is not an administrator without a second factor --------------------------


def test_a_user_promoted_to_admin_gets_no_admin_reach_from_tokens_issued_before(client, admin, make_user):
    user = make_user()
    refresh = login(client, user["email"]).json()["refresh_token"]

    promoted = admin.patch(f"/v1/admin/users/{user['id']}", json={"role": "admin"})

    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert client.get("/v1/admin/users", token=user["token"]).status_code == 401  # the session ended
    assert client.post("/v1/auth/refresh", json={"refresh_token": refresh}).status_code == 401
    fresh = login(client, user["email"]).json()["access_token"]
    assert client.get("/v1/admin/users", token=fresh).status_code == 403  # enrolment first
    assert client.get("/v1/me", token=fresh).status_code == 200


def test_the_second_factor_rule_follows_the_current_role_on_every_request(client, make_user, owner_conn):
    # Even if a role changed without ending the sessions (by hand, in the database), a
    # login without a second factor never reaches admin routes.
    user = make_user()
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE users SET role = 'admin' WHERE id = %s", (user["id"],))

    assert client.get("/v1/admin/users", token=user["token"]).status_code == 403
    assert client.post(
        "/v1/admin/adjustments",
        token=user["token"],
        idempotency_key=True,
        json={"account_id": str(uuid.uuid4()), "amount": "1.00", "currency": "NGN", "direction": "credit",
              "reason": "promoted"},
    ).status_code == 403  # fmt: skip
    assert client.get("/v1/me", token=user["token"]).status_code == 200


def test_a_refresh_after_a_promotion_hands_out_no_admin_token(client, make_user, owner_conn):
    user = make_user()
    pair = login(client, user["email"]).json()
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE users SET role = 'admin' WHERE id = %s", (user["id"],))

    rotated = client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()

    assert client.get("/v1/admin/users", token=rotated["access_token"]).status_code == 403


def test_a_role_change_ends_every_session_and_is_audited(admin, make_user, owner_conn):
    user = make_user("merchant")

    assert admin.patch(f"/v1/admin/users/{user['id']}", json={"role": "user"}).status_code == 200

    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM sessions WHERE user_id = %s AND revoked_at IS NULL", (user["id"],))
        assert cur.fetchone()[0] == 0
        cur.execute(
            "SELECT metadata FROM audit_log WHERE action = 'user.role_changed' AND resource_id = %s", (str(user["id"]),)
        )
        assert cur.fetchone()[0]["sessions_ended"] >= 1


# -- 2. an API key keeps a merchant's reach, whatever its owner becomes ---------------------------


@pytest.fixture
def keyed_merchant(make_user):
    merchant = make_user("merchant")
    r = merchant["client"].post("/v1/api-keys", json={"name": "server", "scopes": ["accounts:read"]})
    assert r.status_code == 201, r.text
    return merchant, r.json()["key"]


@pytest.mark.parametrize("new_role", ["auditor", "admin", "user"])
def test_a_role_change_revokes_the_owners_api_keys(client, admin, make_user, keyed_merchant, new_role):
    merchant, key = keyed_merchant
    stranger = make_user()
    theirs = stranger["client"].post("/v1/accounts", json={"currency": "NGN"}).json()["id"]
    assert client.get(f"/v1/accounts/{theirs}", token=key).status_code == 404

    assert admin.patch(f"/v1/admin/users/{merchant['id']}", json={"role": new_role}).status_code == 200

    assert client.get(f"/v1/accounts/{theirs}", token=key).status_code == 401
    assert client.get("/v1/accounts", token=key).status_code == 401


def test_a_key_never_reads_beyond_a_merchant_even_if_the_role_changed_by_hand(
    client, make_user, keyed_merchant, owner_conn
):
    merchant, key = keyed_merchant
    stranger = make_user()
    theirs = stranger["client"].post("/v1/accounts", json={"currency": "NGN"}).json()["id"]
    with owner_conn.cursor() as cur:  # no revocation ran
        cur.execute("UPDATE users SET role = 'auditor' WHERE id = %s", (merchant["id"],))

    assert client.get(f"/v1/accounts/{theirs}", token=key).status_code in (401, 404)
    assert client.get(f"/v1/accounts/{theirs}/entries", token=key).status_code in (401, 404)


# -- 5. an amount with a trailing newline ------------------------------------------------------------


@pytest.mark.parametrize("amount", ["1.00\n", "1.00\r\n", "1.00 ", "\n1.00"])
def test_an_amount_with_a_trailing_newline_is_refused_and_moves_nothing(admin, person, amount):
    alice, bob = person(), person()
    a = alice.post("/v1/accounts", json={"currency": "NGN"}).json()["id"]
    b = bob.post("/v1/accounts", json={"currency": "NGN"}).json()["id"]
    fund(admin, a)

    r = alice.post(
        "/v1/transfers",
        idempotency_key=True,
        json={"from_account_id": a, "to_account_id": b, "amount": amount, "currency": "NGN"},
    )

    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "amount"
    assert alice.get(f"/v1/accounts/{a}").json()["balance"]["posted"]["amount"] == "100.00"


# -- 8. smaller ones --------------------------------------------------------------------------------


def test_an_email_with_a_zero_width_space_is_the_same_account(client, owner_conn):
    email = f"zw-{uuid.uuid4().hex[:8]}@example.test"
    body = {"email": email, "password": PASSWORD, "full_name": "Ada"}
    register_and_verify(client.post, body)

    for variant in (email + "\u200b", "\ufeff" + email, email.replace("@", "\u200d@"), email.upper()):
        again = client.post("/v1/auth/register", json={**body, "email": variant})
        assert again.status_code == 202, (variant, again.text)  # as for any address: nothing told
    # ... and each variant reached the one account, whose owner was mailed moments ago
    # (the verification): one mail a minute per account, so no notice went out yet.
    assert mailed(email, TAKEN) == []
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM users WHERE email = %s", (email,))
        assert cur.fetchone()[0] == 1
        cur.execute(
            "SELECT v.skipped_reason FROM email_verifications v JOIN users u ON u.id = v.user_id "
            "WHERE u.email = %s AND v.purpose = 'taken'",
            (email,),
        )
        assert [r[0] for r in cur.fetchall()] == ["recent"] * 4
    assert login(client, email + "\u200b").status_code == 200


def test_cloudfront_viewer_headers_from_a_client_are_ignored(client, make_user, owner_conn):
    user = make_user()
    headers = {"CloudFront-Viewer-Country": "KP", "CloudFront-Viewer-City": "<script>alert(1)</script>"}

    r = client.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD}, headers=headers)

    assert r.status_code == 200
    with owner_conn.cursor() as cur:
        cur.execute("SELECT country, city FROM sessions WHERE user_id = %s AND country IS NOT NULL", (user["id"],))
        assert cur.fetchall() == []


def test_cloudfront_viewer_headers_are_checked_even_when_cloudfront_is_trusted():
    class Req:
        ip, user_agent, request_id = "198.51.100.1", "ua", "r"
        via_cloudfront = True  # CloudFront in front, and the request came through a trusted proxy
        headers = {"cloudfront-viewer-country": "NG", "cloudfront-viewer-city": "Lagos"}

    assert (sessions.Client.from_request(Req).country, sessions.Client.from_request(Req).city) == ("NG", "Lagos")
    Req.headers = {"cloudfront-viewer-country": "<b>", "cloudfront-viewer-city": "<script>x</script>"}
    assert (sessions.Client.from_request(Req).country, sessions.Client.from_request(Req).city) == (None, None)
    Req.via_cloudfront, Req.headers = False, {"cloudfront-viewer-country": "NG", "cloudfront-viewer-city": "Lagos"}
    assert (sessions.Client.from_request(Req).country, sessions.Client.from_request(Req).city) == (None, None)


def test_the_auth_purge_job_is_scheduled_locally_and_in_aws():
    from ledgerline.jobs import SCHEDULES
    from ledgerline.local import scheduler

    [row] = [s for s in SCHEDULES if s.handler == "functions.auth.purge"]
    assert not row.planned
    assert row.name in scheduler.Scheduler(load_handler=lambda s: lambda e, c: None).jobs


def test_a_reset_request_over_http_puts_no_token_in_the_outbox(client, make_user, owner_conn):
    user = make_user()

    assert client.post("/v1/auth/password-reset/request", json={"email": user["email"]}).status_code == 202

    with owner_conn.cursor() as cur:
        cur.execute("SELECT payload FROM outbox WHERE payload->>'type' = 'auth.password_reset'")
        payloads = [r[0] for r in cur.fetchall()]
    assert payloads and all(set(p) == {"type", "reset_id"} for p in payloads)


# -- 6. failed authentication is rate-limited per IP ------------------------------------------------


@pytest.fixture
def auth_limit(monkeypatch, owner_conn):
    """The ``auth`` limit at 20 a minute (the suite runs with it off), fresh counters."""
    from ledgerline import config
    from ledgerline.auth import failures

    def reset():
        config.settings.cache_clear()
        failures.forget()
        with owner_conn.cursor() as cur:
            cur.execute("DELETE FROM rate_limit_buckets WHERE key LIKE 'auth:%'")

    monkeypatch.setenv("LEDGERLINE_RATE_LIMITS", "login=off;otp=off;money=off;default=off;auth=20/minute")
    reset()
    yield 20
    monkeypatch.undo()
    reset()


@pytest.mark.parametrize(
    "bad_credential",
    [
        "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",  # a forged JWT
        "llk_deadbeef_" + "x" * 43,  # a made-up API key
    ],
    ids=["jwt", "api-key"],
)
def test_eighty_bad_credentials_from_one_ip_are_refused_with_429_after_the_limit(client, auth_limit, bad_credential):
    statuses = [client.get("/v1/accounts", token=bad_credential).status_code for _ in range(80)]

    assert statuses[:auth_limit] == [401] * auth_limit
    assert set(statuses[auth_limit:]) == {429}
    refused = client.get("/v1/accounts", token=bad_credential)
    assert refused.json()["code"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1


def test_failures_are_counted_once_the_gateway_let_a_token_through(client, auth_limit, make_user):
    # A signed token whose session has ended fails in the function, not the authorizer.
    user = make_user()
    assert client.post("/v1/auth/logout", token=user["token"]).status_code == 204

    statuses = [client.get("/v1/me", token=user["token"]).status_code for _ in range(auth_limit + 5)]

    assert statuses[:auth_limit] == [401] * auth_limit and set(statuses[auth_limit:]) == {429}


def test_a_blocked_ip_is_refused_before_any_credential_is_checked(client, gateway, auth_limit, monkeypatch):
    for _ in range(auth_limit + 1):
        client.get("/v1/accounts", token="llk_deadbeef_" + "y" * 43)
    checked = []
    monkeypatch.setattr(gateway, "authorizer", checked.append)

    r = client.get("/v1/accounts", token="llk_deadbeef_" + "z" * 43)

    assert r.status_code == 429 and checked == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/auth/refresh", {"refresh_token": "rt1_" + "A" * 43}),
        ("/v1/auth/password-reset/confirm", {"token": "prt1_" + "A" * 43, "new_password": "a long new passphrase"}),
    ],
)
def test_guessing_refresh_or_reset_tokens_is_limited_like_any_credential(client, auth_limit, path, body):
    statuses = [client.post(path, json=body).status_code for _ in range(auth_limit + 5)]

    assert set(statuses[:auth_limit]) <= {400, 401} and set(statuses[auth_limit:]) == {429}
