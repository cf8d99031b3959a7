"""Withdrawals end to end, through the local stack: POST /v1/withdrawals → an admin's
approval → the outbox relay → the gateway-payouts queue (moto) → the payout worker
(functions.jobs.payouts) → the fake gateway (the providers' real wire formats) → its
signed payout webhook → POST /v1/webhooks/{provider} → the gateway-webhooks consumer →
``settle_payout``. A payout paid and one that fails each leave the ledger balanced and
the wallet right; a refused payout fails at once; an unavailable gateway leaves only its
own message for a retry; the HTTP contract's refusals change nothing."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from functions.jobs import payouts
from ledgerline import outbox
from ledgerline.local import workers
from ledgerline.local.gateway import LambdaContext
from ledgerline.notifications import read_mailbox
from ledgerline.payments import withdrawals

PAYOUTS = "gateway-payouts"
WEBHOOKS = "gateway-webhooks"
DESTINATION = {"bank_code": "058", "account_number": "0123456789", "account_name": "Ada Obi"}
PROVIDERS = [("paystack", "NGN", "1500.00"), ("stripe", "USD", "25.50"), ("flutterwave", "NGN", "1234.56")]


class Fake:
    """The fake gateway as these tests drive it (its control surface, in process)."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def misbehave(self, provider: str, **changes: Any) -> None:
        self.server.misbehaviour[provider].update(changes)

    def behave(self, provider: str | None = None) -> None:
        from ledgerline.local.fake_gateway import Misbehaviour

        for p in [provider] if provider else list(self.server.misbehaviour):
            self.server.misbehaviour[p] = Misbehaviour()

    def wait_for_delivery(self, provider: str, reference: str, timeout: float = 15.0) -> dict[str, Any]:
        """The fake's payout webhook about ``reference``, once delivered to the API (it is
        sent a moment after the payout is created, as the providers do)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for d in list(self.server.deliveries[provider]):
                if f'"{reference}"' in d["webhook"]["body"] and d.get("delivered_status") is not None:
                    return dict(d)
            time.sleep(0.05)
        raise AssertionError(f"no {provider} webhook about {reference} within {timeout}s")


@pytest.fixture
def fake(fake_server):
    drain(PAYOUTS)
    control = Fake(fake_server)
    yield control
    control.behave()


def sqs():
    from ledgerline.aws import clients

    return clients.client("sqs")


def queue_url(name: str) -> str:
    from ledgerline.aws import resources

    return resources.queue_url(name)


def receive(name: str) -> list[dict[str, Any]]:
    response = sqs().receive_message(
        QueueUrl=queue_url(name), MaxNumberOfMessages=10, WaitTimeSeconds=0,
        MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
    )  # fmt: skip
    return response.get("Messages", [])


def drain(name: str) -> None:
    while messages := receive(name):
        for m in messages:
            sqs().delete_message(QueueUrl=queue_url(name), ReceiptHandle=m["ReceiptHandle"])


def withdraw(client, account_id: str, amount: str, currency: str, provider: str | None = None, **extra: Any):
    body = {"account_id": account_id, "amount": amount, "currency": currency, "destination": DESTINATION, **extra}
    if provider:
        body["provider"] = provider
    return client.post("/v1/withdrawals", idempotency_key=True, json=body)


def requested(client, account_id, amount, currency, provider=None) -> dict[str, Any]:
    r = withdraw(client, account_id, amount, currency, provider)
    assert r.status_code == 201, r.text
    return r.json()


def approve(admin, wid: str):
    return admin.post(f"/v1/admin/withdrawals/{wid}/approve", idempotency_key=True)


def balance(client, account_id: str) -> dict[str, Decimal]:
    b = client.get(f"/v1/accounts/{account_id}").json()["balance"]
    return {k: Decimal(b[k]["amount"]) for k in ("posted", "available")}


def status(client, wid: str) -> str:
    r = client.get(f"/v1/withdrawals/{wid}")
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def ledger_ok(admin) -> None:
    check = admin.get("/v1/admin/ledger/check").json()
    assert check["ok"], check["findings"]


def pay_out_and_settle(fake, provider: str, wid: str) -> None:
    """What the workers do: relay the outbox, run the payout worker, wait for the fake's
    payout webhook to reach the API, run the webhook consumer."""
    outbox.relay(time_budget=10)
    assert workers.deliver_pending(PAYOUTS) >= 1
    fake.wait_for_delivery(provider, wid)
    workers.deliver_pending(WEBHOOKS)


def notices(owner_conn, wid: str) -> list[str]:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT payload->>'type' FROM outbox WHERE queue = 'notifications' AND payload->>'withdrawal_id' = %s",
                    (wid,))  # fmt: skip
        return [r[0] for r in cur.fetchall()]


@pytest.mark.parametrize(("provider", "currency", "amount"), PROVIDERS, ids=[p[0] for p in PROVIDERS])
def test_a_withdrawal_approved_and_paid_out_leaves_the_ledger_balanced(
    fake, admin, wallet, owner_conn, provider, currency, amount
):
    client, account = wallet(currency, "2000.00")
    w = requested(client, account, amount, currency, provider)
    assert w["status"] == "requested" and w["provider"] == provider
    assert w["destination"] == {"bank_code": "058", "account_number": "****6789", "account_name": "Ada Obi"}
    left = Decimal("2000.00") - Decimal(amount)
    assert balance(client, account) == {"posted": Decimal("2000.00"), "available": left}

    approved = approve(admin, w["id"])
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert balance(client, account) == {"posted": Decimal("2000.00"), "available": left}  # held until paid

    pay_out_and_settle(fake, provider, w["id"])

    paid = client.get(f"/v1/withdrawals/{w['id']}").json()
    assert paid["status"] == "paid" and paid["payout_id"] and paid["settlement_transaction_id"]
    assert balance(client, account) == {"posted": left, "available": left}
    assert notices(owner_conn, w["id"]) == ["withdrawal.paid"]
    ledger_ok(admin)
    outbox.relay(time_budget=10)
    workers.deliver_pending("notifications")
    [mail] = [m for m in read_mailbox() if m["payload"].get("withdrawal_id") == w["id"]]
    assert mail["type"] == "withdrawal.paid" and mail["subject"] == "Your withdrawal was paid"
    assert "6789" in mail["text"] and DESTINATION["account_number"] not in mail["text"]


@pytest.mark.parametrize(("provider", "currency", "amount"), PROVIDERS[:2], ids=[p[0] for p in PROVIDERS[:2]])
def test_a_payout_that_fails_voids_the_hold(fake, admin, wallet, owner_conn, provider, currency, amount):
    client, account = wallet(currency, "2000.00")
    fake.misbehave(provider, payout="fail")
    w = requested(client, account, amount, currency, provider)
    assert approve(admin, w["id"]).status_code == 200

    pay_out_and_settle(fake, provider, w["id"])

    failed = client.get(f"/v1/withdrawals/{w['id']}").json()
    assert failed["status"] == "failed" and failed["reason"] and failed["reversal_transaction_id"] is None
    with owner_conn.cursor() as cur:
        cur.execute("SELECT status FROM holds WHERE id = %s", (w["hold_id"],))
        assert cur.fetchall() == [("voided",)]
    assert balance(client, account) == {"posted": Decimal("2000.00"), "available": Decimal("2000.00")}
    assert notices(owner_conn, w["id"]) == ["withdrawal.failed"]
    ledger_ok(admin)


def test_the_payout_message_is_sent_right_after_the_approval(fake, admin, wallet, owner_conn):
    client, account = wallet("NGN", "500.00")
    w = requested(client, account, "100.00", "NGN", "paystack")

    assert approve(admin, w["id"]).status_code == 200

    [message] = receive(PAYOUTS)  # no relay run: the approval published it
    assert json.loads(message["Body"]) == {"type": "withdrawal.approved", "withdrawal_id": w["id"]}
    with owner_conn.cursor() as cur:
        cur.execute("SELECT relayed_at IS NOT NULL FROM outbox WHERE payload->>'withdrawal_id' = %s", (w["id"],))
        assert cur.fetchall() == [(True,)]


def test_a_payout_message_delivered_twice_pays_once(fake, admin, wallet, owner_conn):
    client, account = wallet("NGN", "500.00")
    fake.misbehave("paystack", payout="hold")  # its outcome waits for settle below
    w = requested(client, account, "100.00", "NGN", "paystack")
    assert approve(admin, w["id"]).status_code == 200
    [message] = receive(PAYOUTS)
    arn = f"arn:aws:sqs:eu-west-1:000000000000:ledgerline-{PAYOUTS}"
    event = {"Records": [workers.record(message, queue_arn=arn, region="eu-west-1")]}

    for _ in range(2):  # a redelivery, as after a worker that died before deleting it
        payouts.handler(event, LambdaContext(function_name="payouts", aws_request_id=str(uuid.uuid4())))
    sqs().delete_message(QueueUrl=queue_url(PAYOUTS), ReceiptHandle=message["ReceiptHandle"])

    assert [t.reference for t in fake.server.transfers.values()].count(w["id"]) == 1
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM audit_log WHERE resource_id = %s AND action = 'withdrawal.payout_submitted'",
            (w["id"],),
        )
        assert cur.fetchone()[0] == 1
    assert status(client, w["id"]) == "approved"
    fake.server.settle("paystack", w["id"], "success")
    workers.deliver_pending(WEBHOOKS)
    assert status(client, w["id"]) == "paid"
    assert balance(client, account) == {"posted": Decimal("400.00"), "available": Decimal("400.00")}
    ledger_ok(admin)


def test_a_refused_payout_fails_at_once_and_returns_the_money(fake, admin, wallet):
    client, account = wallet("NGN", "500.00")
    fake.misbehave("paystack", payout="refuse")
    w = requested(client, account, "100.00", "NGN", "paystack")
    assert approve(admin, w["id"]).status_code == 200

    outbox.relay(time_budget=10)
    workers.deliver_pending(PAYOUTS)

    assert status(client, w["id"]) == "failed"
    assert balance(client, account) == {"posted": Decimal("500.00"), "available": Decimal("500.00")}
    ledger_ok(admin)


def test_an_unavailable_gateway_fails_only_its_own_record_and_the_retry_pays(fake, admin, wallet):
    fake.misbehave("stripe", payout="error")
    client, usd = wallet("USD", "100.00")
    _, ngn = wallet("NGN", "100.00", client=client)
    down = requested(client, usd, "10.00", "USD", "stripe")
    up = requested(client, ngn, "10.00", "NGN", "paystack")
    for w in (down, up):
        assert approve(admin, w["id"]).status_code == 200
    outbox.relay(time_budget=10)
    messages = receive(PAYOUTS)
    assert len(messages) == 2

    def invoke(batch: list[dict[str, Any]]) -> set[str]:
        arn = f"arn:aws:sqs:eu-west-1:000000000000:ledgerline-{PAYOUTS}"
        event = {"Records": [workers.record(m, queue_arn=arn, region="eu-west-1") for m in batch]}
        result = payouts.handler(event, LambdaContext(function_name="payouts", aws_request_id=str(uuid.uuid4())))
        return {f["itemIdentifier"] for f in result["batchItemFailures"]}

    failed = invoke(messages)

    [retried] = [m for m in messages if m["MessageId"] in failed]
    assert '"' + down["id"] + '"' in retried["Body"]
    assert (status(client, down["id"]), status(client, up["id"])) == ("approved", "approved")
    fake.behave("stripe")
    assert invoke([retried]) == set()
    for m in messages:
        sqs().delete_message(QueueUrl=queue_url(PAYOUTS), ReceiptHandle=m["ReceiptHandle"])
    for provider, w in (("stripe", down), ("paystack", up)):
        fake.wait_for_delivery(provider, w["id"])
    workers.deliver_pending(WEBHOOKS)
    assert (status(client, down["id"]), status(client, up["id"])) == ("paid", "paid")
    ledger_ok(admin)


def test_a_rejected_withdrawal_releases_the_hold_and_the_user_is_told_at_once(admin, wallet, owner_conn):
    client, account = wallet("NGN", "300.00")
    w = requested(client, account, "100.00", "NGN")

    r = admin.post(f"/v1/admin/withdrawals/{w['id']}/reject", idempotency_key=True, json={"reason": "wrong bank"})

    assert r.status_code == 200 and r.json()["status"] == "rejected" and r.json()["reason"] == "wrong bank"
    assert balance(client, account) == {"posted": Decimal("300.00"), "available": Decimal("300.00")}
    with owner_conn.cursor() as cur:  # no relay run: the rejection's statement is followed by a publish
        cur.execute("SELECT payload->>'type', relayed_at IS NOT NULL FROM outbox WHERE queue = 'notifications' "
                    "AND payload->>'withdrawal_id' = %s", (w["id"],))  # fmt: skip
        assert cur.fetchall() == [("withdrawal.rejected", True)]
    again = approve(admin, w["id"])
    assert (again.status_code, again.json()["code"]) == (409, "invalid_state_transition")


def test_replay_and_mismatch_of_the_same_key(wallet, owner_conn):
    client, account = wallet("NGN", "300.00")
    key = str(uuid.uuid4())
    body = {"account_id": account, "amount": "10.00", "currency": "NGN", "destination": DESTINATION}
    first = client.post("/v1/withdrawals", idempotency_key=key, json=body)
    again = client.post("/v1/withdrawals", idempotency_key=key, json=body)
    other = client.post("/v1/withdrawals", idempotency_key=key, json={**body, "amount": "11.00"})

    assert first.status_code == 201
    assert (again.status_code, again.text, again.headers.get("Idempotent-Replayed")) == (201, first.text, "true")
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert balance(client, account)["available"] == Decimal("290.00")
    assert client.post("/v1/withdrawals", json=body).json()["code"] == "idempotency_key_required"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"amount": "10.001"}, 422, "validation_error"),
        ({"amount": 10}, 422, "validation_error"),
        ({"currency": "USD"}, 422, "validation_error"),
        ({"amount": "99999.00"}, 409, "insufficient_funds"),
        ({"destination": {**DESTINATION, "account_number": "12"}}, 422, "validation_error"),
        ({"destination": {"bank_code": "058", "account_name": "A"}}, 422, "validation_error"),
        ({"provider": "paypal"}, 422, "validation_error"),
        ({"extra": 1}, 422, "validation_error"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(wallet, change, status, code):
    client, account = wallet("NGN", "300.00")
    body = {"account_id": account, "amount": "10.00", "currency": "NGN", "destination": DESTINATION, **change}
    r = client.post("/v1/withdrawals", idempotency_key=True, json=body)

    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert balance(client, account) == {"posted": Decimal("300.00"), "available": Decimal("300.00")}


def test_another_users_withdrawal_and_wallet_are_not_found(wallet, person, admin):
    alice, account = wallet("NGN", "300.00")
    w = requested(alice, account, "10.00", "NGN")
    mallory, _ = wallet("NGN", "300.00")

    assert mallory.get(f"/v1/withdrawals/{w['id']}").status_code == 404
    assert withdraw(mallory, account, "10.00", "NGN").json()["code"] == "not_found"
    assert mallory.post(f"/v1/admin/withdrawals/{w['id']}/approve", idempotency_key=True).status_code == 403
    assert alice.get(f"/v1/withdrawals/{w['id']}").json() == w
    assert admin.get(f"/v1/withdrawals/{w['id']}").json() == w
    assert balance(alice, account)["available"] == Decimal("290.00")


def test_above_the_step_up_amount_the_otp_is_required(api, wallet, monkeypatch):
    import pyotp

    from ledgerline import config

    monkeypatch.setenv("LEDGERLINE_WITHDRAWAL_STEP_UP", "50.00")
    config.settings.cache_clear()
    try:
        client, account = wallet("NGN", "300.00")
        refused = withdraw(client, account, "60.00", "NGN")
        assert (refused.status_code, refused.json()["code"]) == (401, "otp_required")
        setup = client.post("/v1/auth/otp/setup").json()
        totp = pyotp.TOTP(setup["secret"])
        assert client.post("/v1/auth/otp/verify", json={"otp": totp.now()}).status_code == 200
        assert (
            withdraw(client, account, "60.00", "NGN", otp="123456" if totp.now() != "123456" else "654321").json()[
                "code"
            ]
            == "otp_required"
        )
        ok = withdraw(client, account, "60.00", "NGN", otp=setup["recovery_codes"][0])
        assert ok.status_code == 201, ok.text
        assert ok.json()["step_up"] == "otp"
        assert balance(client, account)["available"] == Decimal("240.00")
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()


@pytest.mark.parametrize("approved", [False, True], ids=["requested", "approved"])
def test_a_withdrawals_hold_is_resolved_by_the_withdrawal_only(fake, admin, wallet, owner_conn, approved):
    """The hold routes refuse a withdrawal's hold to its owner (and they are the owner's
    routes: anyone else is told it does not exist): voided by hand, the money would be
    spendable again while the payout is still owed, or paid."""
    client, account = wallet("NGN", "300.00")
    _, other = wallet("NGN", client=client)
    w = requested(client, account, "100.00", "NGN", "paystack")
    if approved:
        fake.misbehave("paystack", payout="hold")
        assert approve(admin, w["id"]).status_code == 200

    for who, refused in ((client, (409, "invalid_state_transition")), (admin, (404, "not_found"))):
        void = who.post(f"/v1/holds/{w['hold_id']}/void", idempotency_key=True)
        capture = who.post(f"/v1/holds/{w['hold_id']}/capture", idempotency_key=True, json={"to_account_id": other})
        for r in (void, capture):
            assert (r.status_code, r.json()["code"]) == refused, r.text
    assert (
        f"withdrawal {w['id']}" in client.post(f"/v1/holds/{w['hold_id']}/void", idempotency_key=True).json()["detail"]
    )
    with owner_conn.cursor() as cur:
        cur.execute("SELECT status FROM holds WHERE id = %s", (w["hold_id"],))
        assert cur.fetchall() == [("active",)]
    assert balance(client, account)["available"] == Decimal("200.00")
    assert status(client, w["id"]) == ("approved" if approved else "requested")
    ledger_ok(admin)


def submitted_long_ago(fake, admin, wallet, owner_conn, provider: str, hours: int):
    """An approved withdrawal the gateway accepted ``hours`` ago and never answered (its
    webhook held back), and its wallet."""
    client, account = wallet(PROVIDERS_BY_NAME[provider][0], "2000.00")
    fake.misbehave(provider, payout="hold")
    w = requested(client, account, PROVIDERS_BY_NAME[provider][1], PROVIDERS_BY_NAME[provider][0], provider)
    assert approve(admin, w["id"]).status_code == 200
    outbox.relay(time_budget=10)
    assert workers.deliver_pending(PAYOUTS) >= 1
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE withdrawals SET submitted_at = now() - make_interval(hours => %s) WHERE id = %s "
                    "RETURNING submitted_at", (hours, w["id"]))  # fmt: skip
        assert cur.rowcount == 1
    return client, account, w


PROVIDERS_BY_NAME = {p: (c, a) for p, c, a in PROVIDERS}


@pytest.mark.parametrize("provider", ["paystack", "stripe"])
@pytest.mark.parametrize("answer", ["success", "failed"])
def test_a_payout_whose_webhook_was_lost_is_settled_by_asking_the_gateway(
    fake, admin, wallet, owner_conn, provider, answer
):
    client, account, w = submitted_long_ago(fake, admin, wallet, owner_conn, provider, hours=2)
    fake.server.transfers[(provider, w["id"])].status = answer  # answered, but no webhook reached us

    counts = withdrawals.check_unanswered()

    assert counts.get("settled", 0) >= 1, counts
    assert status(client, w["id"]) == ("paid" if answer == "success" else "failed")
    left = Decimal("2000.00") - (Decimal(PROVIDERS_BY_NAME[provider][1]) if answer == "success" else 0)
    assert balance(client, account) == {"posted": left, "available": left}
    with owner_conn.cursor() as cur:
        cur.execute("SELECT h.status FROM holds h WHERE h.id = %s", (w["hold_id"],))
        assert cur.fetchall() == [("posted" if answer == "success" else "voided",)]
        cur.execute("SELECT metadata->>'source' FROM audit_log WHERE resource_id = %s AND action LIKE 'withdrawal.%%' "
                    "AND action IN ('withdrawal.paid', 'withdrawal.failed')", (w["id"],))  # fmt: skip
        assert cur.fetchall() == [("status_check",)]
    assert withdrawals.check_unanswered().get("settled", 0) == 0  # asked once: settled, not asked again
    ledger_ok(admin)


def test_a_payout_still_pending_or_not_answerable_stays_held(fake, admin, wallet, owner_conn, caplog):
    client, account, late = submitted_long_ago(fake, admin, wallet, owner_conn, "paystack", hours=100)
    other, _, recent = submitted_long_ago(fake, admin, wallet, owner_conn, "paystack", hours=0)

    counts = withdrawals.check_unanswered()
    fake.misbehave("paystack", unavailable=50)
    down = withdrawals.check_unanswered()

    assert counts.get("overdue", 0) >= 1 and down.get("unknown", 0) >= 1, (counts, down)
    assert counts.get("past_deadline", 0) >= 1 and down.get("past_deadline", 0) >= 1, (counts, down)
    assert (status(client, late["id"]), status(other, recent["id"])) == ("approved", "approved")
    assert balance(client, account)["posted"] == Decimal("2000.00")  # still held, not posted
    assert any(late["id"] in str(getattr(r, "withdrawal_id", "")) for r in caplog.records if r.levelname == "ERROR")
    ledger_ok(admin)


def test_an_approved_payout_whose_message_was_lost_is_sent_again(fake, admin, wallet, owner_conn):
    client, account = wallet("NGN", "2000.00")
    fake.misbehave("paystack", payout="hold")
    w = requested(client, account, "100.00", "NGN", "paystack")
    assert approve(admin, w["id"]).status_code == 200
    drain(PAYOUTS)  # its message lost (or dead-lettered): nothing will send it
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE withdrawals SET decided_at = now() - interval '2 hours' WHERE id = %s", (w["id"],))
    calls = len(fake.server.requests["paystack"])

    counts = withdrawals.check_unanswered()

    assert counts.get("resent", 0) >= 1, counts
    assert client.get(f"/v1/withdrawals/{w['id']}").json()["submitted_at"]
    assert ("paystack", w["id"]) in fake.server.transfers and len(fake.server.requests["paystack"]) > calls
    fake.server.settle("paystack", w["id"], "success")
    fake.wait_for_delivery("paystack", w["id"])
    workers.deliver_pending(WEBHOOKS)
    assert status(client, w["id"]) == "paid"
    ledger_ok(admin)


def test_a_payout_sent_again_after_its_answer_was_lost_is_recorded_not_failed(fake, admin, wallet, owner_conn):
    """Paystack refuses a reference it has seen (duplicate_reference). A resend after a crash
    between the gateway's answer and its record must find that payout and record it, never
    fail the withdrawal: its money would be given back while the bank is being paid."""
    client, account = wallet("NGN", "2000.00")
    fake.misbehave("paystack", payout="hold", duplicate_reference=True)
    w = requested(client, account, "100.00", "NGN", "paystack")
    assert approve(admin, w["id"]).status_code == 200
    outbox.relay(time_budget=10)
    assert workers.deliver_pending(PAYOUTS) >= 1
    sent = fake.server.transfers[("paystack", w["id"])]
    with owner_conn.cursor() as cur:  # the crash: accepted by the gateway, never recorded here
        cur.execute("UPDATE withdrawals SET submitted_at = NULL, payout_id = NULL, "
                    "decided_at = now() - interval '2 hours' WHERE id = %s", (w["id"],))  # fmt: skip

    counts = withdrawals.check_unanswered()

    assert counts.get("resent", 0) >= 1, counts
    again = client.get(f"/v1/withdrawals/{w['id']}").json()
    assert (again["status"], again["payout_id"]) == ("approved", sent.id) and again["submitted_at"]
    assert balance(client, account) == {"posted": Decimal("2000.00"), "available": Decimal("1900.00")}
    fake.server.settle("paystack", w["id"], "success")
    fake.wait_for_delivery("paystack", w["id"])
    workers.deliver_pending(WEBHOOKS)
    assert status(client, w["id"]) == "paid"
    ledger_ok(admin)
