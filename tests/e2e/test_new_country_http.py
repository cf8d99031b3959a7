"""Where a login comes from, over HTTP through the local gateway: the client's address
through a trusted proxy's X-Forwarded-For (an untrusted hop's header ignored), its
country from the offline data, and the step-up a never-seen country needs (an e-mailed
code, or TOTP when enrolled); the admin routes over known countries; the place in the
activity feed and the investigation view."""

from __future__ import annotations

import threading
import uuid

import pyotp
import pytest

from ledgerline import config, geo
from ledgerline.auth import new_country

PASSWORD = "correct horse battery staple 9"
# Real public addresses whose country the shipped data knows; each test checks it
# against the lookup itself, so a data refresh that moved one fails loudly.
NIGERIA = "41.58.0.1"
USA = "8.8.8.8"
JAPAN = "1.0.16.1"


@pytest.fixture(autouse=True)
def known_places():
    assert (geo.lookup(NIGERIA).country, geo.lookup(USA).country, geo.lookup(JAPAN).country) == ("NG", "US", "JP")


@pytest.fixture
def trusted(monkeypatch):
    """trusted(cidrs): the local gateway's peers in these networks are proxies we run."""

    def apply(cidrs: str) -> None:
        monkeypatch.setenv("LEDGERLINE_TRUSTED_PROXIES", cidrs)
        config.settings.cache_clear()

    yield apply
    monkeypatch.undo()
    config.settings.cache_clear()


@pytest.fixture
def behind_proxy(trusted):
    """The test client connects from loopback, as a load balancer on the same host would."""
    trusted("127.0.0.0/8,::1")


def login(client, user, via=None, otp=None):
    body = {"email": user["email"], "password": user["password"]}
    if otp is not None:
        body["otp"] = otp
    headers = {"X-Forwarded-For": via} if via else {}
    return client.post("/v1/auth/login", json=body, headers=headers)


def known(owner_conn, user_id) -> set[str]:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT country FROM known_countries WHERE user_id = %s", (user_id,))
        return {r[0] for r in cur.fetchall()}


def audit_rows(owner_conn, user_id, action):
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT metadata FROM audit_log WHERE action = %s AND resource_id = %s ORDER BY occurred_at",
            (action, str(user_id)),
        )
        return [r[0] for r in cur.fetchall()]


def mailed_code(email: str) -> str:
    """The newest sign-in code e-mailed to ``email``: the outbox row is published, the
    notifications consumer mints the code and the local mailbox holds the e-mail."""
    from ledgerline import notifications, outbox
    from ledgerline.local import workers

    outbox.relay(time_budget=10)
    workers.deliver_pending("notifications")
    mails = [m for m in notifications.read_mailbox() if m.get("type") == new_country.EVENT and m.get("to") == email]
    assert mails, f"no sign-in code was mailed to {email}"
    return mails[-1]["payload"]["code"]


# -- where the request comes from -----------------------------------------------------------


def session_place(owner_conn, user_id):
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT host(ip), country FROM sessions WHERE user_id = %s ORDER BY created_at DESC LIMIT 1", (user_id,)
        )
        return cur.fetchone()


def test_loopback_resolves_to_unknown_and_records_no_country(client, make_user, owner_conn):
    user = make_user()

    assert login(client, user).status_code == 200

    assert session_place(owner_conn, user["id"]) in (("127.0.0.1", None), ("::1", None))
    assert known(owner_conn, user["id"]) == set()


def test_an_untrusted_hops_forwarded_header_is_ignored(client, make_user, owner_conn, trusted):
    user = make_user()
    trusted("10.0.0.0/8")  # proxies exist, but the test client is not one of them

    assert login(client, user, via=NIGERIA).status_code == 200

    ip, country = session_place(owner_conn, user["id"])
    assert ip in ("127.0.0.1", "::1") and country is None
    assert known(owner_conn, user["id"]) == set()


def test_without_trusted_proxies_the_header_is_ignored_too(client, make_user, owner_conn):
    user = make_user()

    assert login(client, user, via=NIGERIA).status_code == 200

    assert session_place(owner_conn, user["id"])[1] is None


def test_a_trusted_proxy_names_the_client_and_its_country(client, make_user, owner_conn, behind_proxy):
    user = make_user()

    # The client's own claim left of the hop our proxy appended is not believed.
    assert login(client, user, via=f"{JAPAN}, {NIGERIA}").status_code == 200

    assert session_place(owner_conn, user["id"]) == (NIGERIA, "NG")


# -- the step-up -------------------------------------------------------------------------------


def test_a_first_login_records_its_country_without_a_second_factor(client, make_user, owner_conn, behind_proxy):
    user = make_user()

    assert login(client, user, via=NIGERIA).status_code == 200

    assert known(owner_conn, user["id"]) == {"NG"}
    [row] = audit_rows(owner_conn, user["id"], new_country.LOGIN_NEW_COUNTRY)
    assert row["country"] == "NG" and row["outcome"] == "first_country" and row["second_factor"] == "none"


def test_a_new_country_needs_the_emailed_code_and_the_same_country_next_time_does_not(
    client, make_user, owner_conn, behind_proxy, aws_endpoint
):
    user = make_user()
    assert login(client, user, via=NIGERIA).status_code == 200

    # From a country never seen: no tokens, a code is e-mailed, and the body says which factor.
    refused = login(client, user, via=USA)
    assert refused.status_code == 401, refused.text
    problem = refused.json()
    assert problem["code"] == "otp_required" and "access_token" not in problem
    assert (problem["reason"], problem["country"], problem["second_factor"]) == ("new_country", "US", "email_code")
    assert known(owner_conn, user["id"]) == {"NG"}
    # The outbox row carries the challenge's id only, never the code.
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT payload FROM outbox WHERE payload->>'type' = %s ORDER BY created_at DESC LIMIT 1",
            (new_country.EVENT,),
        )
        assert set(cur.fetchone()[0]) == {"type", "challenge_id"}

    code = mailed_code(user["email"])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert login(client, user, via=USA, otp=wrong).json()["second_factor"] == "email_code"
    ok = login(client, user, via=USA, otp=code)
    assert ok.status_code == 200, ok.text
    assert ok.json()["access_token"]

    assert known(owner_conn, user["id"]) == {"NG", "US"}
    outcomes = [(r["country"], r["outcome"]) for r in audit_rows(owner_conn, user["id"], new_country.LOGIN_NEW_COUNTRY)]
    assert outcomes == [("NG", "first_country"), ("US", "challenged"), ("US", "verified")]
    # Spent: the same code does not open a second session.
    assert login(client, user, via=JAPAN, otp=code).status_code == 401
    # The same country next time needs nothing more; nor does the first.
    assert login(client, user, via=USA).status_code == 200
    assert login(client, user, via=NIGERIA).status_code == 200


def test_a_totp_user_proves_a_new_country_with_the_authenticator(client, make_user, owner_conn, behind_proxy):
    user = make_user()
    setup = client.post("/v1/auth/otp/setup", token=user["token"]).json()
    totp = pyotp.TOTP(setup["secret"])
    assert client.post("/v1/auth/otp/verify", token=user["token"], json={"otp": totp.now()}).status_code == 200
    assert login(client, user, via=NIGERIA, otp=setup["recovery_codes"][0]).status_code == 200

    refused = login(client, user, via=JAPAN)

    assert refused.status_code == 401
    assert (refused.json()["second_factor"], refused.json()["country"]) == ("totp", "JP")
    assert login(client, user, via=JAPAN, otp=setup["recovery_codes"][1]).status_code == 200
    assert known(owner_conn, user["id"]) == {"NG", "JP"}


def test_two_first_logins_racing_from_two_countries_cannot_both_skip_the_step_up(
    client, make_user, owner_conn, behind_proxy
):
    user = make_user()
    barrier = threading.Barrier(6)
    statuses: dict[str, list[int]] = {"NG": [], "US": []}

    def attempt(country, via):
        barrier.wait()
        statuses[country].append(login(client.__class__(client.base_url), user, via=via).status_code)

    threads = [threading.Thread(target=attempt, args=c) for c in [("NG", NIGERIA), ("US", USA)] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    [winner] = known(owner_conn, user["id"])
    loser = "US" if winner == "NG" else "NG"
    assert 200 in statuses[winner]
    assert statuses[loser] == [401, 401, 401]
    assert len(audit_rows(owner_conn, user["id"], new_country.LOGIN_NEW_COUNTRY)) >= 1


# -- administrators ------------------------------------------------------------------------


def test_an_admin_lists_and_clears_a_users_known_countries(client, admin, make_user, owner_conn, behind_proxy):
    user = make_user()
    assert login(client, user, via=NIGERIA).status_code == 200
    with owner_conn.cursor() as cur:  # as a verified login from the US would have
        cur.execute("INSERT INTO known_countries (user_id, country) VALUES (%s, 'US')", (user["id"],))

    listed = admin.get(f"/v1/admin/users/{user['id']}/countries")
    assert listed.status_code == 200, listed.text
    assert {c["country"] for c in listed.json()["items"]} == {"NG", "US"}
    assert listed.json()["next_cursor"] is None

    assert admin.delete(f"/v1/admin/users/{user['id']}/countries/us").status_code == 204
    assert known(owner_conn, user["id"]) == {"NG"}
    [cleared] = audit_rows(owner_conn, user["id"], new_country.KNOWN_COUNTRY_CLEARED)
    assert cleared["country"] == "US"

    # Cleared: the next login from it steps up again.
    assert login(client, user, via=USA).status_code == 401
    # Bad input changes nothing.
    assert admin.delete(f"/v1/admin/users/{user['id']}/countries/US").status_code == 404
    assert admin.delete(f"/v1/admin/users/{user['id']}/countries/U1").json()["code"] == "validation_error"
    assert admin.get(f"/v1/admin/users/{uuid.uuid4()}/countries").status_code == 404
    assert admin.get("/v1/admin/users/not-a-uuid/countries").status_code == 404
    assert known(owner_conn, user["id"]) == {"NG"}


def test_clearing_a_users_only_country_does_not_make_the_next_login_a_first_one(
    client, admin, make_user, owner_conn, behind_proxy
):
    user = make_user()
    assert login(client, user, via=NIGERIA).status_code == 200  # the first country: recorded
    assert admin.delete(f"/v1/admin/users/{user['id']}/countries/NG").status_code == 204
    assert known(owner_conn, user["id"]) == set()

    # Anyone holding the password, from anywhere, would otherwise set the new baseline.
    refused = login(client, user, via=USA)
    assert refused.status_code == 401 and refused.json()["code"] == "otp_required"
    assert login(client, user, via=NIGERIA).status_code == 401, "a cleared country steps up again"
    assert known(owner_conn, user["id"]) == set()


def test_only_administrators_reach_the_countries_routes(client, make_user):
    user = make_user()

    assert user["client"].get(f"/v1/admin/users/{user['id']}/countries").status_code == 403
    assert user["client"].delete(f"/v1/admin/users/{user['id']}/countries/NG").status_code == 403


# -- the place, where people read it ------------------------------------------------------------


def test_the_activity_feed_and_the_investigation_view_show_where_a_login_came_from(
    client, admin, make_user, behind_proxy
):
    user = make_user()
    session = login(client, user, via=NIGERIA)
    assert session.status_code == 200
    me = client.as_user(session.json()["access_token"])

    messages = [i["message"] for i in me.get("/v1/activity?category=auth").json()["items"]]
    assert "You logged in from NG" in messages
    assert "Sign-in from a country new to your account: NG" in messages

    trail = admin.get(f"/v1/admin/audit?actor_id={user['id']}&action=auth.login_succeeded").json()["items"]
    assert [(r["country"], r["city"], r["actor_ip"]) for r in trail] == [("NG", None, NIGERIA)]


def test_the_local_gateway_counts_failed_credentials_per_client_behind_a_trusted_proxy(
    client, behind_proxy, monkeypatch, owner_conn
):
    from ledgerline.auth import failures

    def reset():
        config.settings.cache_clear()
        failures.forget()
        with owner_conn.cursor() as cur:
            cur.execute("DELETE FROM rate_limit_buckets WHERE key LIKE 'auth:%'")

    monkeypatch.setenv("LEDGERLINE_RATE_LIMITS", "login=off;otp=off;money=off;default=off;auth=3/minute")
    reset()
    made_up_key = "llk_deadbeef_" + "x" * 43
    try:
        nigeria = [
            client.get("/v1/accounts", token=made_up_key, headers={"X-Forwarded-For": NIGERIA}).status_code
            for _ in range(5)
        ]
        other = client.get("/v1/accounts", token=made_up_key, headers={"X-Forwarded-For": USA})

        # The proxy's own address is not the one refused: each client behind it has its budget.
        assert nigeria == [401, 401, 401, 429, 429]
        assert other.status_code == 401
    finally:
        reset()  # the counters; the settings come back when the fixtures undo the environment


def test_with_a_deployers_city_database_the_feed_says_the_city(client, make_user, behind_proxy, monkeypatch, tmp_path):
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    from ledgerline.geo import backends

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    writer.insert_network(IPSet(["41.58.0.0/16"]), {"country": {"iso_code": "NG"}, "city": {"names": {"en": "Lagos"}}})
    writer.to_db_file(str(tmp_path / "city.mmdb"))
    monkeypatch.setenv("LEDGERLINE_GEOIP_MMDB", str(tmp_path / "city.mmdb"))
    config.settings.cache_clear()
    backends.reset()
    try:
        user = make_user()
        session = login(client, user, via=NIGERIA)
        assert session.status_code == 200
        feed = client.as_user(session.json()["access_token"]).get("/v1/activity?category=auth").json()["items"]
    finally:
        backends.reset()  # the fixtures put the environment back; the next lookup reads it again

    assert "You logged in from Lagos, NG" in [i["message"] for i in feed]
    sessions = client.as_user(session.json()["access_token"]).get("/v1/me/sessions").json()["items"]
    assert ("NG", "Lagos") in [(s["country"], s["city"]) for s in sessions]


def test_the_investigation_view_places_a_failed_login_by_its_address(client, admin, make_user, behind_proxy):
    user = make_user()
    refused = client.post(
        "/v1/auth/login",
        json={"email": user["email"], "password": "not the password at all"},
        headers={"X-Forwarded-For": JAPAN},
    )
    assert refused.status_code == 401

    trail = admin.get(f"/v1/admin/audit?resource_id={user['id']}&action=auth.login_failed").json()["items"]

    assert [(r["actor_ip"], r["country"], r["city"]) for r in trail] == [(JAPAN, "JP", None)]
