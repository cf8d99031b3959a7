"""Gateway webhooks end to end, through the local stack: the fake gateway (the providers'
real wire formats and signatures) → POST /v1/webhooks/{provider} → the gateway-webhooks
queue (moto) → the consumer (functions.webhooks.consume) → the wallet.

A signed Paystack, Stripe and Flutterwave payment each credits once, even delivered five
times at once and consumed concurrently; a bad signature, a tampered body, a stale Stripe
timestamp and a replayed old event credit nothing; amounts that disagree flag the
payment; a gateway outage during the re-query leaves the message for retry; the consumer
reports only failed records; a poison message lands in the DLQ after 5 receives."""

from __future__ import annotations

import json
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
import requests

from functions.webhooks import consume
from ledgerline.local import workers
from ledgerline.local.gateway import LambdaContext

QUEUE = "gateway-webhooks"


@pytest.fixture
def fake(fake_gateway_to_api):
    """The session's fake gateway (tests/fixtures_gateway.py), delivering to this run's API."""
    return fake_gateway_to_api


@pytest.fixture(autouse=True)
def clean(fake):
    """An empty queue: each test counts its own messages."""
    drain_queue()


def sqs():
    from ledgerline.aws import clients

    return clients.client("sqs")


def queue_url(name: str = QUEUE) -> str:
    from ledgerline.aws import resources

    return resources.queue_url(name)


def receive(url: str | None = None, n: int = 10) -> list[dict[str, Any]]:
    return (
        sqs()
        .receive_message(
            QueueUrl=url or queue_url(),
            MaxNumberOfMessages=n,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        .get("Messages", [])
    )


def drain_queue() -> None:
    while messages := receive():
        for m in messages:
            sqs().delete_message(QueueUrl=queue_url(), ReceiptHandle=m["ReceiptHandle"])


def run_consumer(messages: list[dict[str, Any]]) -> set[str]:
    """One Lambda invocation over ``messages``, as the event source mapping runs it: the
    failed ones stay in the queue (visible again at once, for the test), the rest are
    deleted. Returns the failed message ids."""
    arn = "arn:aws:sqs:eu-west-1:000000000000:ledgerline-gateway-webhooks"
    event = {"Records": [workers.record(m, queue_arn=arn, region="eu-west-1") for m in messages]}
    result = consume.handler(event, LambdaContext(function_name="consume", aws_request_id=str(uuid.uuid4())))
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for m in messages:
        if m["MessageId"] in failed:
            sqs().change_message_visibility(QueueUrl=queue_url(), ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        else:
            sqs().delete_message(QueueUrl=queue_url(), ReceiptHandle=m["ReceiptHandle"])
    return failed


def consume_all() -> set[str]:
    """Everything queued now, batch by batch; the ids that failed (left in the queue)."""
    failed: set[str] = set()
    seen: set[str] = set()
    while messages := [m for m in receive() if m["MessageId"] not in failed]:
        if all(m["MessageId"] in seen for m in messages):
            break
        seen.update(m["MessageId"] for m in messages)
        failed |= run_consumer(messages)
    return failed


def topup(client, account_id: str, amount: str, currency: str, provider: str) -> dict[str, Any]:
    r = client.post(
        "/v1/topups",
        idempotency_key=True,
        json={"account_id": account_id, "amount": amount, "currency": currency, "provider": provider},
    )
    assert r.status_code == 201, r.text
    return r.json()


def balance(client, account_id: str) -> Decimal:
    return Decimal(client.get(f"/v1/accounts/{account_id}").json()["balance"]["posted"]["amount"])


def payment(client, payment_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/payments/{payment_id}")
    assert r.status_code == 200, r.text
    return r.json()


def post_webhook(api: str, provider: str, delivery: dict[str, Any], body: str | None = None) -> requests.Response:
    return requests.post(
        f"{api}/v1/webhooks/{provider}",
        data=(body if body is not None else delivery["body"]).encode(),
        headers=delivery["headers"],
        timeout=30,
    )


def webhook_events(owner_conn, reference: str) -> list[tuple[str, str]]:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT event_id, outcome FROM payment_webhook_events WHERE reference = %s", (reference,))
        return cur.fetchall()


def postings(owner_conn, provider: str, reference: str) -> int:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM transactions WHERE reference = %s", (f"{provider}:{reference}",))
        return int(cur.fetchone()[0])


PAYMENTS = [("paystack", "NGN", "5000.00"), ("stripe", "USD", "25.50"), ("flutterwave", "KES", "1234.56")]


@pytest.mark.parametrize(("provider", "currency", "amount"), PAYMENTS, ids=[p[0] for p in PAYMENTS])
def test_a_signed_payment_delivered_five_times_at_once_credits_once(
    api, fake, wallet, owner_conn, provider, currency, amount
):
    client, account_id = wallet(currency)
    created = topup(client, account_id, amount, currency, provider)
    assert created["checkout"], created
    # Given the customer pays and the gateway's webhook reaches us
    paid = fake.pay(provider, created["reference"], amount, currency)
    assert paid["delivered_status"] == 200
    # ... and then four more times, all at once
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def again() -> None:
        barrier.wait(timeout=30)
        statuses.append(post_webhook(api, provider, paid["webhook"]).status_code)

    threads = [threading.Thread(target=again) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert statuses == [200] * 4
    # When five consumers take the five messages at the same time
    messages: list[dict[str, Any]] = []
    while len(messages) < 5 and (got := receive()):
        messages += got
    assert len(messages) == 5
    start = threading.Barrier(5)
    failures: list[set[str]] = []

    def consume_one(m: dict[str, Any]) -> None:
        start.wait(timeout=30)
        failures.append(run_consumer([m]))

    consumers = [threading.Thread(target=consume_one, args=(m,)) for m in messages]
    for t in consumers:
        t.start()
    for t in consumers:
        t.join(timeout=60)

    # Then the wallet is credited once, by one posting, and the payment has succeeded
    assert failures == [set()] * 5
    assert balance(client, account_id) == Decimal(amount)
    assert postings(owner_conn, provider, created["reference"]) == 1
    assert len(webhook_events(owner_conn, created["reference"])) == 1
    read = payment(client, created["id"])
    assert read["status"] == "succeeded" and read["transaction_id"]
    # ... and the user's notification waits in the outbox
    with owner_conn.cursor() as cur:
        cur.execute("SELECT payload->>'type' FROM outbox WHERE payload->>'payment_id' = %s", (created["id"],))
        assert [r[0] for r in cur.fetchall()] == ["payment.received"]


def test_the_webhook_is_answered_fast_with_received(api, fake, wallet):
    client, account_id = wallet("NGN")
    created = topup(client, account_id, "10.00", "NGN", "paystack")
    paid = fake.pay("paystack", created["reference"], "10.00", "NGN", deliver=False)

    r = post_webhook(api, "paystack", paid["webhook"])

    assert (r.status_code, r.json()) == (200, {"status": "received"})
    (message,) = receive()
    body = json.loads(message["Body"])
    # What travels: the verified body and the provider, never a signature header.
    assert body["provider"] == "paystack" and body["body"] == paid["webhook"]["body"]
    assert "headers" not in body and "x-paystack-signature" not in message["Body"]


@pytest.mark.parametrize("provider", ["paystack", "stripe", "flutterwave"])
def test_a_bad_signature_is_refused_audited_and_credits_nothing(api, fake, wallet, owner_conn, provider):
    currency = "USD" if provider == "stripe" else "NGN"
    client, account_id = wallet(currency)
    created = topup(client, account_id, "10.00", currency, provider)
    fake.misbehave(provider, signature="invalid")
    with owner_conn.cursor() as cur:  # one row per IP and minute: this test's IP starts afresh
        cur.execute("DELETE FROM rate_limit_buckets WHERE key LIKE 'webhook-signature:%%'")

    paid = fake.pay(provider, created["reference"], "10.00", currency)

    assert paid["delivered_status"] == 401
    assert receive() == []
    assert balance(client, account_id) == 0 and payment(client, created["id"])["status"] == "pending"
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT actor_type, host(actor_ip), metadata->>'provider' FROM audit_log"
            " WHERE action = 'payment.webhook_signature_invalid' ORDER BY occurred_at DESC LIMIT 1"
        )
        assert cur.fetchone() == ("gateway", "127.0.0.1", provider)


def test_a_tampered_body_is_refused(api, fake, wallet):
    client, account_id = wallet("NGN")
    created = topup(client, account_id, "10.00", "NGN", "paystack")
    paid = fake.pay("paystack", created["reference"], "10.00", "NGN", deliver=False)
    tampered = paid["webhook"]["body"].replace('"amount":1000', '"amount":9000000')
    assert tampered != paid["webhook"]["body"]

    r = post_webhook(api, "paystack", paid["webhook"], body=tampered)

    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    assert receive() == []


def test_a_stale_stripe_timestamp_is_refused(api, fake, wallet):
    client, account_id = wallet("USD")
    created = topup(client, account_id, "10.00", "USD", "stripe")
    fake.misbehave("stripe", signature="stale")

    paid = fake.pay("stripe", created["reference"], "10.00", "USD")

    assert paid["delivered_status"] == 401
    assert receive() == [] and balance(client, account_id) == 0


def test_a_replayed_old_event_credits_nothing_more(api, fake, wallet, owner_conn):
    client, account_id = wallet("NGN")
    created = topup(client, account_id, "10.00", "NGN", "paystack")
    paid = fake.pay("paystack", created["reference"], "10.00", "NGN")
    assert consume_all() == set()
    assert balance(client, account_id) == Decimal("10.00")

    # Paystack signs no timestamp: the same bytes verify again, and the event is known.
    replayed = post_webhook(api, "paystack", paid["webhook"])

    assert replayed.status_code == 200
    assert consume_all() == set()
    assert balance(client, account_id) == Decimal("10.00")
    assert [outcome for _, outcome in webhook_events(owner_conn, created["reference"])] == ["credited"]


def test_flooded_bad_signatures_write_one_audit_row_per_ip_and_minute(api, fake, owner_conn):
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM rate_limit_buckets WHERE key LIKE 'webhook-signature:%%'")
        cur.execute("SELECT count(*) FROM audit_log WHERE action = 'payment.webhook_signature_invalid'")
        before = cur.fetchone()[0]
    bad = {"headers": {"Content-Type": "application/json", "x-paystack-signature": "00" * 64}, "body": "{}"}

    statuses = [post_webhook(api, "paystack", bad).status_code for _ in range(10)]

    assert statuses == [401] * 10
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM audit_log WHERE action = 'payment.webhook_signature_invalid'")
        assert cur.fetchone()[0] == before + 1


def test_an_unknown_provider_is_not_found(api):
    r = requests.post(f"{api}/v1/webhooks/paypal", json={"event": "x"}, timeout=30)

    assert r.status_code == 404


def test_an_underpayment_credits_nothing_and_flags_the_payment(api, fake, wallet, owner_conn):
    client, account_id = wallet("NGN")
    created = topup(client, account_id, "5000.00", "NGN", "flutterwave")

    # The customer paid less than the checkout asked: webhook and re-query agree on it.
    fake.pay("flutterwave", created["reference"], "4000.00", "NGN")
    assert consume_all() == set()

    read = payment(client, created["id"])
    assert (read["status"], read["transaction_id"]) == ("flagged", None)
    assert "4000" in read["reason"] and "5000.00 NGN" in read["reason"]
    assert balance(client, account_id) == 0
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM audit_log WHERE action = 'payment.flagged' AND resource_id = %s",
                    (created["id"],))  # fmt: skip
        assert cur.fetchone()[0] == 1


def test_a_webhook_whose_amount_differs_from_the_gateways_is_flagged(api, fake, wallet):
    client, account_id = wallet("NGN")
    created = topup(client, account_id, "100.00", "NGN", "paystack")
    fake.misbehave("paystack", verify="wrong_amount")

    fake.pay("paystack", created["reference"], "100.00", "NGN")
    assert consume_all() == set()

    read = payment(client, created["id"])
    assert read["status"] == "flagged" and "the gateway reports" in read["reason"]
    assert balance(client, account_id) == 0


def test_a_gateway_outage_during_the_requery_leaves_the_message_for_retry(api, fake, wallet, owner_conn):
    client, account_id = wallet("NGN")
    created = topup(client, account_id, "70.00", "NGN", "paystack")
    fake.misbehave("paystack", verify="fail")
    fake.pay("paystack", created["reference"], "70.00", "NGN")

    (message,) = receive()
    assert run_consumer([message]) == {message["MessageId"]}
    assert balance(client, account_id) == 0 and webhook_events(owner_conn, created["reference"]) == []

    # When the gateway recovers, the same message is received again and credits, once.
    fake.misbehave("paystack", verify=None)
    (again,) = receive()
    assert again["MessageId"] == message["MessageId"]
    assert run_consumer([again]) == set()
    assert balance(client, account_id) == Decimal("70.00")
    assert receive() == []


def test_the_consumer_reports_only_the_failed_records(api, fake, wallet):
    client, account_id = wallet("NGN")
    created = topup(client, account_id, "30.00", "NGN", "paystack")
    fake.pay("paystack", created["reference"], "30.00", "NGN")
    sqs().send_message(QueueUrl=queue_url(), MessageBody="not json at all")
    messages: list[dict[str, Any]] = []
    while len(messages) < 2 and (got := receive()):
        messages += got

    failed = run_consumer(messages)

    poison = next(m["MessageId"] for m in messages if m["Body"] == "not json at all")
    assert failed == {poison}
    assert balance(client, account_id) == Decimal("30.00")


def test_a_poison_message_lands_in_the_dlq_after_five_receives(api, fake):
    from ledgerline.jobs import queue

    assert queue(QUEUE).max_receive_count == 5
    body = json.dumps({"provider": "stripe", "body": '{"object": "not an event"}'})
    sqs().send_message(QueueUrl=queue_url(), MessageBody=body)
    dlq = queue_url(queue(QUEUE).dlq_name)

    for receives in range(1, 6):
        (m,) = receive()
        assert m["Attributes"]["ApproximateReceiveCount"] == str(receives)
        assert run_consumer([m]) == {m["MessageId"]}

    assert receive() == []  # the sixth receive moves it to the DLQ
    dead = receive(dlq)
    assert [m["Body"] for m in dead] == [body]
    for m in dead:
        sqs().delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])


def test_webhooks_count_against_their_own_limit_not_the_default_one(api, fake, wallet, owner_conn, monkeypatch):
    from ledgerline import config

    client, account_id = wallet("NGN")
    created = topup(client, account_id, "10.00", "NGN", "paystack")
    paid = fake.pay("paystack", created["reference"], "10.00", "NGN", deliver=False)
    monkeypatch.setenv(
        "LEDGERLINE_RATE_LIMITS", "login=off;otp=off;money=off;default=1/minute;auth=off;webhook=3/minute"
    )
    config.settings.cache_clear()
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM rate_limit_buckets WHERE key LIKE 'webhook:%%' OR key LIKE 'default:%%'")
    try:
        answers = [post_webhook(api, "paystack", paid["webhook"]) for _ in range(4)]
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()
        with owner_conn.cursor() as cur:
            cur.execute("DELETE FROM rate_limit_buckets WHERE key LIKE 'webhook:%%' OR key LIKE 'default:%%'")

    # A default-limited route would have refused the second; the webhook route takes three.
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["code"] == "rate_limited" and answers[-1].headers["Retry-After"]


def test_the_signature_is_checked_before_anything_parses_the_body(api, fake):
    bad = {"headers": {"Content-Type": "text/plain", "x-paystack-signature": "00" * 64}, "body": "not json {"}

    r = post_webhook(api, "paystack", bad)

    # Not the input gate's 415 or 400: the raw bytes were refused first.
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    assert r.headers["Content-Type"] == "application/problem+json"
    assert receive() == []


def test_a_flutterwave_dashboard_sending_verif_hash_is_accepted_too(api, fake, wallet):
    client, account_id = wallet("NGN")
    created = topup(client, account_id, "15.00", "NGN", "flutterwave")
    fake.misbehave("flutterwave", flutterwave_scheme="verif-hash")

    paid = fake.pay("flutterwave", created["reference"], "15.00", "NGN")

    assert paid["delivered_status"] == 200
    assert "verif-hash" in {k.lower() for k in paid["webhook"]["headers"]}
    assert consume_all() == set()
    assert balance(client, account_id) == Decimal("15.00")


def test_a_webhook_that_cannot_be_queued_is_not_acknowledged(api, fake, wallet, monkeypatch):
    from ledgerline.aws import resources

    client, account_id = wallet("NGN")
    created = topup(client, account_id, "10.00", "NGN", "paystack")
    paid = fake.pay("paystack", created["reference"], "10.00", "NGN", deliver=False)
    monkeypatch.setenv(resources.queue_env_var(QUEUE), queue_url().rsplit("/", 1)[0] + "/no-such-queue")

    r = post_webhook(api, "paystack", paid["webhook"])

    # Not a 200: the gateway delivers it again later.
    assert (r.status_code, r.json()["code"]) == (500, "internal_error")
    monkeypatch.undo()
    assert post_webhook(api, "paystack", paid["webhook"]).status_code == 200


def test_a_refused_webhook_with_unstorable_text_in_its_user_agent_is_still_a_401(fake, owner_conn):
    from functions.webhooks import ingress as route
    from ledgerline import routes
    from ledgerline.local.gateway import build_event

    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM rate_limit_buckets WHERE key LIKE 'webhook-signature:%%'")
    matched, params, _ = routes.match("POST", "/v1/webhooks/paystack")
    event = build_event(
        method="POST", raw_path="/v1/webhooks/paystack", raw_query="", body=b"{}", source_ip="192.0.2.77",
        headers={"content-type": "application/json", "user-agent": "evil\x00\ud800", "x-paystack-signature": "00"},
        route=matched, path_parameters=params, claims=None, request_id="req-nul",
    )  # fmt: skip

    result = route.handler(event, None)

    assert result["statusCode"] == 401
    with owner_conn.cursor() as cur:
        cur.execute("SELECT user_agent FROM audit_log WHERE metadata->>'request_id' = 'req-nul'")
        assert cur.fetchall() == [("evil?",)]
