"""The verification mail's worker side (``ledgerline.auth.verification``) against the real
database: what it mints, what it skips and why, redeliveries, and the purge."""

from __future__ import annotations

import threading
import uuid

import pytest

from ledgerline import errors, notifications
from ledgerline.audit import Actor
from ledgerline.auth import maintenance, resets, sessions, users, verification
from ledgerline.db import transaction

pytestmark = pytest.mark.usefixtures("database_url", "aws_endpoint")

PASSWORD = "correct horse battery staple 9"
ACTOR = Actor(id=None, type="anonymous", ip="203.0.113.40")
CLIENT = sessions.Client(ip="203.0.113.40", user_agent="pytest")


def register(email, password=PASSWORD):
    transaction(lambda cur: users.register(cur, email=email, password=password, full_name="Ada", actor=ACTOR))


def queued(email):
    """The notification events registrations of ``email`` queued, oldest first."""

    def work(cur):
        cur.execute(
            """
            SELECT o.payload FROM outbox o
              JOIN email_verifications v ON v.id::text = o.payload->>'verification_id'
              JOIN users u ON u.id = v.user_id
             WHERE u.email = %s ORDER BY o.id
            """,
            (email,),
        )
        return [r["payload"] for r in cur.fetchall()]

    return transaction(work)


def prepare(payload):
    return notifications.prepare(payload, run=transaction)


def row(owner_conn, verification_id):
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT purpose, sent_at, token_hash, used_at, skipped_reason FROM email_verifications WHERE id = %s",
            (verification_id,),
        )
        return cur.fetchone()


def test_the_outbox_carries_an_id_and_the_worker_mints_a_token_stored_as_its_digest_only(owner_conn):
    email = f"mint-{uuid.uuid4().hex[:8]}@example.test"
    register(email)
    [event] = queued(email)
    assert set(event) == {"type", "verification_id"} and event["type"] == verification.VERIFY_EVENT

    mail = prepare(event)

    token = mail["token"]
    assert token.startswith(verification.TOKEN_PREFIX) and mail["email"] == email
    purpose, sent_at, token_hash, used_at, skipped = row(owner_conn, event["verification_id"])
    assert (purpose, used_at, skipped) == ("verify", None, None) and sent_at is not None
    assert bytes(token_hash) == sessions.digest(token)
    rendered = notifications.render(mail, email_of=lambda _: None)
    assert rendered.to == email and token in rendered.text


def test_a_redelivered_mail_gets_a_fresh_token_and_only_the_newest_works(owner_conn):
    email = f"redeliver-{uuid.uuid4().hex[:8]}@example.test"
    register(email)
    [event] = queued(email)

    first, second = prepare(event)["token"], prepare(event)["token"]

    assert first != second
    with pytest.raises(errors.BadRequest):
        verification.verify(first, ACTOR)
    verification.verify(second, ACTOR)
    assert sessions.login(email, PASSWORD, None, CLIENT).access_token
    # Spent: a further redelivery sends nothing.
    assert prepare(event) is None


def test_a_verification_queued_before_the_address_was_proven_another_way_is_skipped(owner_conn):
    email = f"meanwhile-{uuid.uuid4().hex[:8]}@example.test"
    register(email)
    [event] = queued(email)
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE users SET email_verified_at = now() WHERE email = %s", (email,))

    assert prepare(event) is None
    assert row(owner_conn, event["verification_id"])[4] == "verified"


def test_a_suspended_account_is_mailed_nothing(owner_conn):
    email = f"suspended-{uuid.uuid4().hex[:8]}@example.test"
    register(email)
    [event] = queued(email)
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE users SET status = 'suspended' WHERE email = %s", (email,))

    assert prepare(event) is None
    assert row(owner_conn, event["verification_id"])[4] == "inactive"


def test_an_event_of_another_shape_is_not_sent():
    assert prepare({"type": verification.VERIFY_EVENT}) is None
    assert prepare({"type": verification.TAKEN_EVENT, "verification_id": "not-a-uuid"}) is None
    assert prepare({"type": verification.VERIFY_EVENT, "verification_id": str(uuid.uuid4())}) is None


def test_the_purge_drops_verifications_past_their_life_and_keeps_the_rest(owner_conn):
    old, fresh = (f"{k}-{uuid.uuid4().hex[:8]}@example.test" for k in ("old", "fresh"))
    register(old)
    register(fresh)
    [old_event], [fresh_event] = queued(old), queued(fresh)
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE email_verifications SET requested_at = now() - interval '3 days' WHERE id = %s",
            (old_event["verification_id"],),
        )

    purged = transaction(maintenance.purge)

    assert purged["email_verifications"] >= 1
    assert row(owner_conn, old_event["verification_id"]) is None
    assert row(owner_conn, fresh_event["verification_id"]) is not None


def test_users_an_operator_creates_are_verified_and_a_reset_proves_an_unverified_address(owner_conn):
    made = transaction(
        lambda cur: users.create_user(
            cur, email=f"made-{uuid.uuid4().hex[:8]}@example.test", password=PASSWORD, full_name="M",
            actor=Actor.system("tests"),
        )
    )  # fmt: skip
    assert sessions.login(made.email, PASSWORD, None, CLIENT).access_token

    email = f"forgot-{uuid.uuid4().hex[:8]}@example.test"
    register(email)
    with pytest.raises(errors.EmailNotVerified):
        sessions.login(email, PASSWORD, None, CLIENT)

    def request(cur):
        resets.request_reset(cur, email, ACTOR)
        cur.execute("SELECT payload->>'reset_id' AS reset_id FROM outbox ORDER BY id DESC LIMIT 1")
        return cur.fetchone()["reset_id"]

    mail = prepare({"type": resets.EVENT, "reset_id": transaction(request)})
    resets.confirm_reset(mail["token"], "a new and long passphrase", ACTOR)

    assert sessions.login(email, "a new and long passphrase", None, CLIENT).access_token


def test_workers_preparing_notices_to_one_account_at_once_send_one(owner_conn):
    owner = transaction(
        lambda cur: users.create_user(
            cur, email=f"owner-{uuid.uuid4().hex[:8]}@example.test", password=PASSWORD, full_name="O",
            actor=Actor.system("tests"),
        )
    )  # fmt: skip
    for _ in range(6):
        register(owner.email, password="someone else's passphrase 5")
    events = queued(owner.email)
    barrier = threading.Barrier(len(events))
    mails: list = []

    def deliver(event):
        barrier.wait(timeout=30)
        mails.append(prepare(event))

    threads = [threading.Thread(target=deliver, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    sent = [m for m in mails if m is not None]
    assert len(mails) == 6 and len(sent) == 1
    assert sent[0]["type"] == verification.TAKEN_EVENT and "token" not in sent[0]
    with owner_conn.cursor() as cur:
        cur.execute("SELECT skipped_reason FROM email_verifications WHERE user_id = %s", (owner.id,))
        assert sorted(r[0] or "sent" for r in cur.fetchall()) == ["recent"] * 5 + ["sent"]
