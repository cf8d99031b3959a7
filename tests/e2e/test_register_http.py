"""Registration over HTTP without account enumeration: 202 pending_verification for a
taken and a free address alike, the verification e-mail, login refused until the address
is proven, and what the owner of a taken address is told (issue 18, part C)."""

from __future__ import annotations

import threading
import uuid

import pytest

from tests.registration import TAKEN, VERIFY, mailed

PASSWORD = "correct horse battery staple 9"
PENDING = {"status": "pending_verification"}


def new_email(prefix: str = "reg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.test"


def register(client, email, password=PASSWORD, **extra):
    return client.post(
        "/v1/auth/register", json={"email": email, "password": password, "full_name": "Ada Obi", **extra}
    )


def login(client, email, password=PASSWORD):
    return client.post("/v1/auth/login", json={"email": email, "password": password})


def rows(owner_conn, sql, *args):
    with owner_conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def trace(owner_conn, email):
    """Everything a registration of ``email`` may leave: the account, its mails, its audit rows."""
    return {
        "users": rows(owner_conn, "SELECT id FROM users WHERE email = %s", email),
        "mails": rows(
            owner_conn,
            "SELECT v.id FROM email_verifications v JOIN users u ON u.id = v.user_id WHERE u.email = %s",
            email,
        ),
        "audit": rows(
            owner_conn,
            "SELECT action FROM audit_log WHERE action = 'user.registered' AND payload_after->>'email' = %s",
            email,
        ),
    }


def test_a_free_address_is_pending_until_its_mailed_token_is_sent_back(client, owner_conn):
    email = new_email()

    r = register(client, email, phone="+2348031234567")

    assert r.status_code == 202 and r.json() == PENDING, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    # The account exists, unverified, and cannot log in, even with the right password ...
    refused = login(client, email)
    assert refused.status_code == 403 and refused.json()["code"] == "email_not_verified", refused.text
    # ... while a wrong password learns nothing more than for any address.
    wrong = login(client, email, "not the password at all 1")
    assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"
    # The worker mailed a token (never in the outbox row), and it proves the address.
    [mail] = mailed(email)
    token = mail["payload"]["token"]
    assert token in mail["text"] and mail["subject"] == "Confirm your e-mail address for Ledgerline"
    [(payload,)] = rows(
        owner_conn,
        "SELECT o.payload FROM outbox o WHERE o.payload->>'verification_id' = %s",
        mail["payload"]["verification_id"],
    )
    assert set(payload) == {"type", "verification_id"} and token not in str(payload)
    assert client.post("/v1/auth/verify-email", json={"token": token}).status_code == 204
    assert login(client, email).status_code == 200
    # A token is good once.
    again = client.post("/v1/auth/verify-email", json={"token": token})
    assert again.status_code == 400 and again.json()["code"] == "bad_request"


def test_a_taken_address_gets_the_same_answer_and_changes_nothing_but_its_owner_is_told(client, make_user, owner_conn):
    owner = make_user()
    before = rows(
        owner_conn, "SELECT full_name, password_hash, email_verified_at FROM users WHERE id = %s", owner["id"]
    )

    taken = register(client, owner["email"].upper(), password="another long passphrase 7")
    free = register(client, new_email())

    assert taken.status_code == free.status_code == 202
    assert taken.json() == free.json() == PENDING
    assert {k.lower() for k in taken.headers} == {k.lower() for k in free.headers}
    assert taken.headers.get("Content-Length") == free.headers.get("Content-Length")
    assert (
        rows(owner_conn, "SELECT full_name, password_hash, email_verified_at FROM users WHERE id = %s", owner["id"])
        == before
    )
    # The owner is told, with nothing to click; their password still works.
    [notice] = mailed(owner["email"], TAKEN)
    assert notice["subject"] == "Someone tried to register with your e-mail address"
    assert "token" not in notice["payload"]
    assert mailed(owner["email"], VERIFY) == []
    assert login(client, owner["email"]).status_code == 200
    [(actor_type,)] = rows(
        owner_conn,
        "SELECT actor_type FROM audit_log WHERE action = 'auth.registration_address_taken' AND resource_id = %s",
        str(owner["id"]),
    )
    assert actor_type == "anonymous"


def test_an_address_registered_again_before_it_was_verified_gets_a_fresh_token(client, owner_conn):
    email = new_email()
    assert register(client, email).status_code == 202
    [first] = mailed(email)
    # A minute later (one mail a minute per account), the same address registers again.
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE email_verifications SET sent_at = sent_at - interval '2 minutes' "
            "WHERE user_id = (SELECT id FROM users WHERE email = %s)",
            (email,),
        )

    assert register(client, email, password="a different passphrase 8").status_code == 202

    first_mail, second = mailed(email)
    assert first_mail["id"] == first["id"]
    assert second["payload"]["token"] != first["payload"]["token"]
    assert mailed(email, TAKEN) == []
    assert client.post("/v1/auth/verify-email", json={"token": second["payload"]["token"]}).status_code == 204
    # The token answers the second registration: its password is the account's now, and
    # the first one's (a stranger's, perhaps, who registered the address before its owner)
    # no longer logs in.
    assert login(client, email, "a different passphrase 8").status_code == 200
    assert login(client, email).status_code == 401
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM email_verifications v JOIN users u ON u.id = v.user_id "
            "WHERE u.email = %s AND v.password_hash IS NOT NULL AND v.used_at IS NOT NULL",
            (email,),
        )
        assert cur.fetchone()[0] == 0, "a used verification forgets the password hash it carried"


def test_a_stranger_who_registered_the_address_first_cannot_log_into_the_owners_account(client, owner_conn):
    email = new_email()
    assert register(client, email, password="the stranger's passphrase 1").status_code == 202
    [_strangers] = mailed(email)  # to the owner's inbox: the stranger never sees it
    with owner_conn.cursor() as cur:  # past the one-mail-a-minute throttle
        cur.execute(
            "UPDATE email_verifications SET sent_at = sent_at - interval '2 minutes' "
            "WHERE user_id = (SELECT id FROM users WHERE email = %s)",
            (email,),
        )
    assert register(client, email, password="the owner's own passphrase 2", full_name="The Owner").status_code == 202
    owners = mailed(email)[-1]["payload"]["token"]

    assert client.post("/v1/auth/verify-email", json={"token": owners}).status_code == 204
    assert login(client, email, "the stranger's passphrase 1").status_code == 401
    owner = login(client, email, "the owner's own passphrase 2")
    assert owner.status_code == 200
    me = client.get("/v1/me", token=owner.json()["access_token"]).json()
    assert me["full_name"] == "The Owner"


def test_a_stranger_registering_an_address_over_and_over_does_not_flood_its_owner(client, make_user, owner_conn):
    owner = make_user()
    for _ in range(5):
        assert register(client, owner["email"]).status_code == 202

    assert len(mailed(owner["email"], TAKEN)) == 1
    reasons = rows(
        owner_conn,
        "SELECT skipped_reason FROM email_verifications WHERE user_id = %s ORDER BY requested_at",
        owner["id"],
    )
    assert [r[0] for r in reasons] == [None, "recent", "recent", "recent", "recent"]


@pytest.mark.parametrize(
    ("token", "reason"),
    [("evt1_" + "A" * 43, "unknown"), ("prt1_not-this-kind-of-token", "malformed"), ("", "malformed")],
)
def test_a_token_that_is_not_ours_is_refused_alike(client, owner_conn, token, reason):
    def failures():
        return rows(
            owner_conn,
            "SELECT count(*) FROM audit_log WHERE action = 'auth.email_verification_failed' "
            "AND metadata->>'reason' = %s",
            reason,
        )[0][0]

    before = failures()

    r = client.post("/v1/auth/verify-email", json={"token": token})

    assert r.status_code == 400 and r.json()["code"] == "bad_request"
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert failures() == before + 1


def test_an_expired_token_or_a_suspended_account_is_refused(client, owner_conn, admin):
    expired, suspended = new_email("exp"), new_email("susp")
    for email in (expired, suspended):
        assert register(client, email).status_code == 202
    tokens = {email: mailed(email)[0]["payload"]["token"] for email in (expired, suspended)}
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE email_verifications SET expires_at = now() - interval '1 second' "
            "WHERE user_id = (SELECT id FROM users WHERE email = %s)",
            (expired,),
        )
        cur.execute("SELECT id FROM users WHERE email = %s", (suspended,))
        (suspended_id,) = cur.fetchone()
    assert admin.patch(f"/v1/admin/users/{suspended_id}", json={"status": "suspended"}).status_code == 200

    for email in (expired, suspended):
        r = client.post("/v1/auth/verify-email", json={"token": tokens[email]})
        assert r.status_code == 400 and r.json()["code"] == "bad_request"
        assert rows(owner_conn, "SELECT email_verified_at FROM users WHERE email = %s", email) == [(None,)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address", "password": PASSWORD, "full_name": "Ada"}, "email"),
        ({"email": "{email}", "password": "short", "full_name": "Ada"}, "password"),
        ({"email": "{email}", "password": PASSWORD, "full_name": "   "}, "full_name"),
        ({"email": "{email}", "password": PASSWORD, "full_name": "Ada", "phone": "12"}, "phone"),
        ({"email": "{email}", "password": PASSWORD, "full_name": "Ada", "role": "admin"}, None),
    ],
)
def test_a_bad_registration_is_a_422_that_leaves_nothing(client, owner_conn, body, field):
    email = new_email("bad")
    body = {k: (email if v == "{email}" else v) for k, v in body.items()}

    r = client.post("/v1/auth/register", json=body)

    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    if field:
        assert field in {e["field"].split(".")[-1] for e in r.json()["errors"]}
    assert trace(owner_conn, email) == {"users": [], "mails": [], "audit": []}


def test_the_same_free_address_registered_by_racing_requests_makes_one_account(client, owner_conn):
    email = new_email("race")
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def attempt(i: int) -> None:
        barrier.wait(timeout=30)
        statuses.append(register(client, email, password=f"racing passphrase number {i}").status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert statuses == [202] * 6
    [(user_id,)] = rows(owner_conn, "SELECT id FROM users WHERE email = %s", email)
    purposes = rows(owner_conn, "SELECT purpose FROM email_verifications WHERE user_id = %s", user_id)
    assert sorted(p for (p,) in purposes) == ["taken"] * 5 + ["verify"]
    assert len(trace(owner_conn, email)["audit"]) == 1
    # One mail (the verification); the notices of the same minute are held back.
    assert len(mailed(email)) == 1 and mailed(email, TAKEN) == []


def test_a_registration_that_fails_midway_leaves_no_trace(client, owner_conn):
    email = new_email("crash")
    name = f"test_fault_{uuid.uuid4().hex[:8]}"
    with owner_conn.cursor() as cur:
        # The last statement but one (the mail's row) fails, after the account and its
        # audit row were written in the same transaction.
        cur.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
            BEGIN
              IF EXISTS (SELECT 1 FROM users WHERE id = NEW.user_id AND email = %(email)s) THEN
                RAISE EXCEPTION 'simulated crash mid-registration: secret internals';
              END IF;
              RETURN NEW;
            END $$
            """,
            {"email": email},
        )
        cur.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON email_verifications FOR EACH ROW EXECUTE FUNCTION {name}()"
        )
    try:
        r = register(client, email)
    finally:
        with owner_conn.cursor() as cur:
            cur.execute(f"DROP TRIGGER {name} ON email_verifications")
            cur.execute(f"DROP FUNCTION {name}()")

    assert r.status_code == 500 and r.json()["code"] == "internal_error"
    assert "secret internals" not in r.text
    assert trace(owner_conn, email) == {"users": [], "mails": [], "audit": []}
    assert (
        rows(
            owner_conn,
            "SELECT id FROM audit_log WHERE action = 'user.registered' AND payload_after->>'email' = %s",
            email,
        )
        == []
    )
    # And the address is free: registering again works.
    assert register(client, email).status_code == 202
    assert len(trace(owner_conn, email)["users"]) == 1
