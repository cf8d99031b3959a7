"""The refresh grace and the idle limit over real HTTP, through the local gateway."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

PASSWORD = "correct horse battery staple 9"


def login(client, email):
    response = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


def refresh(client, token):
    return client.post("/v1/auth/refresh", json={"refresh_token": token})


def test_a_refresh_sent_twice_in_parallel_answers_one_pair_and_keeps_the_session(client, make_user):
    user = make_user()
    first = login(client, user["email"])

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: refresh(client, first["refresh_token"]), range(2)))

    assert [a.status_code for a in answers] == [200, 200]
    one, two = (a.json() for a in answers)
    assert (one["access_token"], one["refresh_token"]) == (two["access_token"], two["refresh_token"])
    assert client.get("/v1/me", token=one["access_token"]).status_code == 200
    assert refresh(client, one["refresh_token"]).status_code == 200  # the session goes on


def test_an_idle_sessions_refresh_is_a_401_session_idle(client, make_user, owner_conn):
    user = make_user()
    first = login(client, user["email"])
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE sessions SET last_seen_at = now() - interval '16 minutes' WHERE user_id = %s", (user["id"],)
        )

    refused = refresh(client, first["refresh_token"])

    assert refused.status_code == 401 and refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "session_idle" and "log in again" in refused.json()["detail"]
    assert client.get("/v1/me", token=first["access_token"]).status_code == 401  # the session ended
    assert login(client, user["email"])["access_token"]  # a new login is all it takes
