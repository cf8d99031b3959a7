"""Notifications: outbox → relay → SQS → worker → consumer → mailbox (locally) or SES (AWS)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import pytest

from functions.jobs import notifications as consumer
from ledgerline import notifications, outbox
from ledgerline.db.tx import transaction
from ledgerline.local import workers


def _event(*payloads, outbox_ids=None):
    """An SQS batch event exactly as the local workers (and Lambda) build it."""
    messages = []
    for i, payload in enumerate(payloads):
        body = json.dumps(payload)
        message = {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": f"rh-{i}",
            "Body": body,
            "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
            "Attributes": {"ApproximateReceiveCount": "1"},
        }
        if outbox_ids:
            message["MessageAttributes"] = {"outbox_id": {"DataType": "String", "StringValue": str(outbox_ids[i])}}
        messages.append(message)
    arn = "arn:aws:sqs:eu-west-1:123456789012:ledgerline-notifications"
    return {"Records": [workers.record(m, queue_arn=arn, region="eu-west-1") for m in messages]}


@pytest.fixture
def user(database_url):
    email = f"notify-{uuid.uuid4().hex[:8]}@example.com"

    def work(cur):
        cur.execute("INSERT INTO users (email, full_name) VALUES (%s, 'Ada Obi') RETURNING id", (email,))
        return str(cur.fetchone()["id"])

    return {"id": transaction(work), "email": email}


@pytest.fixture
def local_mailbox(database_url, tmp_path, monkeypatch):
    """Point the library's data dir (and so the mailbox) at a temporary directory.

    After ``database_url``: the database is already chosen, so the data dir moving cannot
    start another embedded server there.
    """
    from ledgerline import config

    monkeypatch.setenv("LEDGERLINE_DATA_DIR", str(tmp_path))
    config.settings.cache_clear()
    yield notifications.mailbox_path()
    monkeypatch.undo()
    config.settings.cache_clear()


def test_a_password_reset_travels_from_the_outbox_to_the_local_mailbox(aws_endpoint, local_mailbox, user):
    from ledgerline.audit import Actor
    from ledgerline.auth import resets

    # Given a reset request committed with its outbox event (an id, no secret)
    def request(cur):
        resets.request_reset(cur, user["email"], Actor.system("tests"))
        cur.execute("SELECT id, payload FROM outbox ORDER BY id DESC LIMIT 1")
        return cur.fetchone()

    row = transaction(request)
    outbox_id = row["id"]
    assert set(row["payload"]) == {"type", "reset_id"}
    # Then the commit published it at once (no relay run needed) ...
    relayed = transaction(
        lambda cur: (cur.execute("SELECT relayed_at FROM outbox WHERE id = %s", (outbox_id,)), cur.fetchone())[1]
    )
    assert relayed["relayed_at"] is not None
    # ... and when the local workers poll the notifications queue
    pool = workers.start()
    try:
        deadline = time.monotonic() + 15
        mine = []
        while not mine and time.monotonic() < deadline:
            mine = [m for m in notifications.read_mailbox() if m["outbox_id"] == str(outbox_id)]
            time.sleep(0.1)
    finally:
        pool.stop()
    # Then the e-mail is in the mailbox, once, with a token the worker minted, which works
    assert len(mine) == 1, "the reset e-mail never reached the mailbox"
    [mail] = mine
    token = mail["payload"]["token"]
    assert mail["to"] == user["email"]
    assert mail["subject"] == "Reset your Ledgerline password"
    assert token.startswith(resets.TOKEN_PREFIX) and token in mail["text"]
    assert local_mailbox.stat().st_mode & 0o777 == 0o600
    resets.confirm_reset(token, "a brand new passphrase 7", Actor.system("tests"))


def test_pending_notifications_can_be_delivered_on_demand(aws_endpoint, local_mailbox, user):
    # Given an account-locked event relayed to the queue (no worker threads running)
    outbox_id = transaction(
        lambda cur: outbox.enqueue(cur, "notifications", {"type": "auth.account_locked", "user_id": user["id"]})
    )
    outbox.relay()
    # When a test asks for what is pending to be delivered now
    assert workers.deliver_pending("notifications") >= 1
    # Then it is in the mailbox, addressed to the user
    [mail] = [m for m in notifications.read_mailbox() if m["outbox_id"] == str(outbox_id)]
    assert mail["to"] == user["email"]
    assert mail["subject"] == "Sign-in to your Ledgerline account was locked"


def test_the_recipient_is_looked_up_from_the_user_id(user, tmp_path):
    box = notifications.Mailbox(tmp_path / "box.jsonl")
    result = consumer.consume(
        _event(
            {"type": "auth.account_locked", "user_id": user["id"], "message": "Sign-in was locked."}, outbox_ids=[9]
        ),
        None,
        box,
    )
    assert result == {"batchItemFailures": []}
    [mail] = box.read()
    assert mail["to"] == user["email"]
    assert mail["outbox_id"] == "9"
    assert mail["text"].startswith("Sign-in was locked.")


def test_an_undeliverable_event_fails_alone_and_the_rest_is_delivered(tmp_path):
    box = notifications.Mailbox(tmp_path / "box.jsonl")
    event = _event(
        {"type": "auth.account_locked", "email": "ok@example.com"},
        {"type": "auth.account_locked"},  # no recipient at all
        {"type": "marketing.newsletter", "email": "x@example.com"},  # no template, no text
        {"type": "auth.account_locked", "email": "sms@example.com", "channel": "sms"},
    )
    result = consumer.consume(event, None, box)
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed == {r["messageId"] for r in event["Records"][1:]}
    assert [m["to"] for m in box.read()] == ["ok@example.com"]


def test_a_reset_event_without_a_request_id_is_dropped_never_mailed(database_url, tmp_path):
    # An event of the old format carried the token itself: it is not delivered.
    box = notifications.Mailbox(tmp_path / "box.jsonl")

    result = consumer.consume(
        _event({"type": "auth.password_reset", "email": "ada@example.com", "token": "prt1_old"}), None, box
    )

    assert result == {"batchItemFailures": []}
    assert box.read() == []


def test_a_generic_event_with_its_own_subject_and_message_is_delivered(tmp_path):
    box = notifications.Mailbox(tmp_path / "box.jsonl")
    consumer.consume(
        _event({"type": "ledger.alert", "email": "ops@example.com", "subject": "Check", "message": "Drift found"}),
        None,
        box,
    )
    [mail] = box.read()
    assert (mail["subject"], mail["text"]) == ("Check", "Drift found")


def _sent_count():
    from ledgerline.aws import clients

    return int(clients.client("ses").get_send_quota()["SentLast24Hours"])


def test_in_aws_notifications_go_through_ses(aws_endpoint, monkeypatch):
    from ledgerline import config
    from ledgerline.aws import clients

    clients.client("sesv2").create_email_identity(EmailIdentity="no-reply@ledgerline.example")
    monkeypatch.setenv("LEDGERLINE_EMAIL_FROM", "no-reply@ledgerline.example")
    monkeypatch.setenv("LEDGERLINE_ENV", "aws")
    config.settings.cache_clear()
    try:
        provider = notifications.default_provider()
        assert isinstance(provider, notifications.SesProvider)
        before = _sent_count()
        result = consumer.consume(_event({"type": "auth.account_locked", "email": "ada@example.com"}), None, provider)
        assert result == {"batchItemFailures": []}
        assert _sent_count() == before + 1
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()


def test_ses_refusing_the_sender_fails_the_record_instead_of_dropping_it(aws_endpoint, monkeypatch):
    monkeypatch.setenv("LEDGERLINE_EMAIL_FROM", "unverified@nowhere.example")
    event = _event({"type": "auth.account_locked", "email": "ada@example.com"})
    before = _sent_count()
    result = consumer.consume(event, None, notifications.SesProvider())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert _sent_count() == before


def test_without_a_configured_sender_nothing_is_silently_skipped(monkeypatch):
    from ledgerline.aws import email

    monkeypatch.delenv("LEDGERLINE_EMAIL_FROM", raising=False)
    with pytest.raises(email.EmailNotConfigured):
        email.from_address()
