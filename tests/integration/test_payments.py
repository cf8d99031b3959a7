"""Payments in the database: a top-up opens a pending payment and moves nothing;
payment_confirm credits a confirmed payment exactly once (events deduplicated, the
payment row locked, the posting's unique reference), in one transaction with its status,
audit row and notification; disagreements are flagged and credit nothing."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest

from ledgerline import jsonutil
from ledgerline.db import transaction
from ledgerline.ledger.operations import by_name
from ledgerline.ledger.testing import new_wallet
from ledgerline.payments import store
from tests.faults import posting_fault

GATEWAY_ACTOR = {"id": None, "type": "gateway", "metadata": {"provider": "paystack"}}


def open_topup(account, amount="5000.00", currency="NGN", provider="paystack") -> dict[str, Any]:
    args = by_name("topup").arguments(
        {"account_id": str(account.id), "amount": amount, "currency": currency, "provider": provider},
        owner=account.owner_id,
    )
    actor = {"id": str(account.owner_id), "type": "user", "ip": "127.0.0.1"}

    def work(cur):
        cur.execute(
            "SELECT money_op(p_op => 'topup', p_actor => %s::jsonb, p_args => %s::jsonb) AS r",
            (jsonutil.dumps(actor), jsonutil.dumps(args)),
        )
        return cur.fetchone()["r"]

    return transaction(work)


def event(payment, *, event_id=None, amount=None, currency="NGN") -> dict[str, Any]:
    return {
        "event_id": event_id or f"evt-{uuid.uuid4().hex}",
        "type": "charge.success",
        "reference": payment["reference"],
        "amount": str(amount if amount is not None else payment["amount"]["amount"]),
        "currency": currency,
        "status": "succeeded",
    }


def said(payment, amount=None, currency="NGN") -> dict[str, Any]:
    return {
        "provider_id": "gw-1",
        "amount": str(amount if amount is not None else payment["amount"]["amount"]),
        "currency": currency,
        "status": "succeeded",
    }


def confirm(provider, facts, decision="succeeded", gateway=None, reason=None):
    return transaction(
        lambda cur: store.confirm(
            cur, provider=provider, event=facts, decision=decision, actor=GATEWAY_ACTOR, gateway=gateway, reason=reason
        )
    )


def balance(owner_conn, account_id) -> Decimal:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT posted FROM balances WHERE account_id = %s", (account_id,))
        return cur.fetchone()[0]


def audit_actions(owner_conn, payment_id) -> list[str]:
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT action FROM audit_log WHERE resource_type = 'payment' AND resource_id = %s ORDER BY occurred_at",
            (str(payment_id),),
        )
        return [r[0] for r in cur.fetchall()]


def test_a_topup_opens_a_pending_payment_and_moves_no_money(database_url, owner_conn):
    wallet = new_wallet("NGN")

    result = open_topup(wallet, "5000.00")

    assert result["status"] == 201
    body = result["body"]
    assert (body["status"], body["provider"], body["amount"]) == (
        "pending",
        "paystack",
        {"amount": "5000.00", "currency": "NGN"},
    )
    assert body["reference"].startswith("LL-") and body["checkout"] is None
    assert balance(owner_conn, wallet.id) == 0
    assert audit_actions(owner_conn, body["id"]) == ["payment.initiated"]


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"amount": "1.001"}, "validation_error", 422),
        ({"currency": "USD"}, "validation_error", 422),
        ({"provider": "paypal"}, "validation_error", 422),
        ({"account_id": str(uuid.uuid4())}, "not_found", 404),
    ],
)
def test_a_bad_topup_is_refused_and_opens_nothing(database_url, owner_conn, change, code, status):
    wallet = new_wallet("NGN")
    args = {"account_id": str(wallet.id), "amount": "10.00", "currency": "NGN", "provider": "paystack", **change}
    full = by_name("topup").arguments(args, owner=wallet.owner_id)

    def work(cur):
        cur.execute(
            "SELECT money_op(p_op => 'topup', p_actor => %s::jsonb, p_args => %s::jsonb) AS r",
            (jsonutil.dumps({"id": str(wallet.owner_id), "type": "user"}), jsonutil.dumps(full)),
        )
        return cur.fetchone()["r"]

    result = transaction(work)

    assert (result["status"], result["body"]["code"]) == (status, code)
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments WHERE account_id = %s", (wallet.id,))
        assert cur.fetchone()[0] == 0


def test_someone_elses_wallet_is_not_found(database_url):
    mine, theirs = new_wallet("NGN"), new_wallet("NGN")
    args = by_name("topup").arguments(
        {"account_id": str(theirs.id), "amount": "10.00", "currency": "NGN", "provider": "stripe"}, owner=mine.owner_id
    )

    def work(cur):
        cur.execute(
            "SELECT money_op(p_op => 'topup', p_actor => %s::jsonb, p_args => %s::jsonb) AS r",
            (jsonutil.dumps({"id": str(mine.owner_id), "type": "user"}), jsonutil.dumps(args)),
        )
        return cur.fetchone()["r"]

    assert transaction(work)["body"]["code"] == "not_found"


def test_a_confirmed_payment_credits_the_wallet_once_with_its_audit_row_and_notification(database_url, owner_conn):
    wallet = new_wallet("NGN")
    payment = open_topup(wallet, "2500.50")["body"]
    facts = event(payment)

    first = confirm("paystack", facts, gateway=said(payment))
    again = confirm("paystack", facts, gateway=said(payment))
    other_event = confirm("paystack", event(payment), gateway=said(payment))

    assert first.outcome == "credited" and first.payment.status == "succeeded"
    assert again.outcome == "duplicate_event"
    assert other_event.outcome == "already_succeeded"
    assert balance(owner_conn, wallet.id) == Decimal("2500.50")
    assert audit_actions(owner_conn, payment["id"]) == ["payment.initiated", "payment.succeeded"]
    with owner_conn.cursor() as cur:
        cur.execute("SELECT reference, kind FROM transactions WHERE id = %s", (first.payment.transaction_id,))
        assert cur.fetchone() == (f"paystack:{payment['reference']}", "topup")
        cur.execute(
            "SELECT payload FROM outbox WHERE queue = 'notifications' AND payload->>'payment_id' = %s", (payment["id"],)
        )
        (notification,) = [r[0] for r in cur.fetchall()]
    assert notification["type"] == "payment.received" and notification["user_id"] == str(wallet.owner_id)
    assert "2500.50 NGN" in notification["subject"]


def _race(n, work):
    barrier = threading.Barrier(n)
    results, failures = [], []

    def run(i):
        barrier.wait(timeout=30)
        try:
            results.append(work(i))
        except Exception as exc:  # the test reports every failure
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures
    return results


def test_five_concurrent_deliveries_of_one_event_credit_once(database_url, owner_conn):
    wallet = new_wallet("NGN")
    payment = open_topup(wallet, "100.00")["body"]
    facts = event(payment)

    outcomes = _race(5, lambda _: confirm("paystack", facts, gateway=said(payment)).outcome)

    assert sorted(outcomes) == ["credited"] + ["duplicate_event"] * 4
    assert balance(owner_conn, wallet.id) == Decimal("100.00")


def test_different_events_of_one_payment_racing_credit_once(database_url, owner_conn):
    wallet = new_wallet("NGN")
    payment = open_topup(wallet, "100.00", provider="flutterwave")["body"]

    outcomes = _race(5, lambda _: confirm("flutterwave", event(payment), gateway=said(payment)).outcome)

    assert sorted(outcomes) == ["already_succeeded"] * 4 + ["credited"]
    assert balance(owner_conn, wallet.id) == Decimal("100.00")
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM transactions WHERE reference = %s", (f"flutterwave:{payment['reference']}",))
        assert cur.fetchone()[0] == 1


def test_amounts_that_disagree_credit_nothing_and_flag_the_payment(database_url, owner_conn):
    wallet = new_wallet("NGN")
    payment = open_topup(wallet, "100.00")["body"]

    # Even when told "succeeded", the database checks the amounts where the money moves.
    result = confirm("paystack", event(payment), gateway=said(payment, amount="90.00"))

    assert result.outcome == "flagged" and result.payment.status == "flagged"
    assert balance(owner_conn, wallet.id) == 0
    assert audit_actions(owner_conn, payment["id"]) == ["payment.initiated", "payment.flagged"]
    with owner_conn.cursor() as cur:
        cur.execute("SELECT review FROM payments WHERE id = %s", (payment["id"],))
        assert cur.fetchone()[0]["gateway"]["amount"] == "90.00"


def test_a_failed_payment_is_recorded_and_credits_nothing(database_url, owner_conn):
    wallet = new_wallet("NGN")
    payment = open_topup(wallet, "100.00")["body"]

    result = confirm("paystack", event(payment), decision="failed", reason="the gateway reports the payment failed")

    assert (result.outcome, result.payment.status, result.payment.reason) == (
        "failed",
        "failed",
        "the gateway reports the payment failed",
    )
    assert balance(owner_conn, wallet.id) == 0
    assert audit_actions(owner_conn, payment["id"]) == ["payment.initiated", "payment.failed"]


def test_an_event_about_no_payment_of_ours_is_audited_and_credits_nothing(database_url, owner_conn):
    facts = {"event_id": f"evt-{uuid.uuid4().hex}", "type": "charge.success", "reference": "LL-NOSUCHPAYMENT0",
             "amount": "5.00", "currency": "NGN", "status": "succeeded"}  # fmt: skip

    result = confirm("paystack", facts, decision="record")

    assert (result.outcome, result.payment) == ("unknown_payment", None)
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'payment.webhook_unmatched'"
            " AND metadata->'event'->>'event_id' = %s",
            (facts["event_id"],),
        )
        assert cur.fetchone()[0] == 1


def test_a_credit_that_crashes_midway_leaves_no_trace_and_a_retry_credits_once(database_url, owner_conn):
    wallet = new_wallet("KES")
    payment = open_topup(wallet, "75.00", currency="KES", provider="stripe")["body"]
    facts = event(payment, currency="KES")

    with posting_fault(owner_conn, "Top-up via stripe"), pytest.raises(Exception, match="simulated crash"):
        confirm("stripe", facts, gateway=said(payment, currency="KES"))

    assert balance(owner_conn, wallet.id) == 0
    with owner_conn.cursor() as cur:
        cur.execute("SELECT status FROM payments WHERE id = %s", (payment["id"],))
        assert cur.fetchone()[0] == "pending"
        cur.execute("SELECT count(*) FROM payment_webhook_events WHERE event_id = %s", (facts["event_id"],))
        assert cur.fetchone()[0] == 0  # the event is not marked seen: its redelivery is acted on
        cur.execute("SELECT count(*) FROM outbox WHERE payload->>'payment_id' = %s", (payment["id"],))
        assert cur.fetchone()[0] == 0
    assert audit_actions(owner_conn, payment["id"]) == ["payment.initiated"]

    retried = confirm("stripe", facts, gateway=said(payment, currency="KES"))

    assert retried.outcome == "credited"
    assert balance(owner_conn, wallet.id) == Decimal("75.00")


def test_a_refused_signature_is_audited_once_per_ip_and_minute(database_url, owner_conn):
    from ledgerline.audit import Actor

    ip, other_ip = f"203.0.113.{uuid.uuid4().int % 250}", f"198.51.100.{uuid.uuid4().int % 250}"
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM rate_limit_buckets WHERE key LIKE 'webhook-signature:%%'")

    def refuse(address):
        actor = Actor(id=None, type="gateway", ip=address, request_id="req")
        return transaction(lambda cur: store.record_invalid_signature(cur, actor, "stripe", "no valid v1 signature"))

    written = [refuse(ip) for _ in range(5)] + [refuse(other_ip)]

    assert written == [True, False, False, False, False, True]
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT actor_type, host(actor_ip) FROM audit_log WHERE action = 'payment.webhook_signature_invalid'"
            " AND actor_ip IN (%s::inet, %s::inet) ORDER BY occurred_at",
            (ip, other_ip),
        )
        assert cur.fetchall() == [("gateway", ip), ("gateway", other_ip)]


def test_a_subscribed_merchant_gets_payment_succeeded_and_payment_failed_events(database_url, owner_conn):
    wallet = new_wallet("NGN")
    with owner_conn.cursor() as cur:  # an endpoint as POST /v1/webhook-endpoints stores it (no delivery runs here)
        cur.execute(
            "INSERT INTO webhook_endpoints (id, owner_id, url, events, secret_ciphertext)"
            " VALUES (gen_random_uuid(), %s, 'https://merchant.example/hooks', %s, '\\x00')",
            (wallet.owner_id, ["payment.succeeded", "payment.failed"]),
        )
    paid = open_topup(wallet, "12.00")["body"]
    unpaid = open_topup(wallet, "13.00")["body"]

    confirm("paystack", event(paid), gateway=said(paid))
    confirm("paystack", event(unpaid), decision="failed", reason="declined")

    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT type, data->>'reference', data->>'status' FROM webhook_events WHERE owner_id = %s ORDER BY created_at",
            (wallet.owner_id,),
        )
        assert cur.fetchall() == [
            ("payment.succeeded", paid["reference"], "succeeded"),
            ("payment.failed", unpaid["reference"], "failed"),
        ]
        cur.execute(
            "SELECT count(*) FROM outbox o JOIN webhook_deliveries d ON d.id::text = o.payload->>'delivery_id'"
            " JOIN webhook_events e ON e.id = d.event_id WHERE e.owner_id = %s AND o.queue = 'merchant-webhooks'",
            (wallet.owner_id,),
        )
        assert cur.fetchone()[0] == 2


def test_the_consumer_hands_payout_events_to_withdrawals_and_records_no_payment_event(aws_endpoint, owner_conn):
    from ledgerline.payments import confirm as consumer

    reference = str(uuid.uuid4())  # a withdrawal's id: none of ours, so nothing settles
    payout = {"event": "transfer.success", "data": {"id": 42, "reference": reference, "amount": 500000,
              "currency": "NGN", "status": "success"}}  # fmt: skip

    outcome = consumer.process(jsonutil.dumps({"provider": "paystack", "body": jsonutil.dumps(payout)}))

    assert outcome == "payout"
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payment_webhook_events WHERE reference = %s", (reference,))
        assert cur.fetchone()[0] == 0


@pytest.mark.parametrize(
    "body",
    ["not json", '{"provider": "paystack"}', '{"provider": "paystack", "body": "{\\"event\\": 1}"}', "[]"],
)
def test_a_message_the_consumer_cannot_read_raises_for_the_dlq(aws_endpoint, body):
    from ledgerline.payments import confirm as consumer

    with pytest.raises(ValueError):
        consumer.process(body)
