"""POST /v1/admin/payments/{id}/resolve over HTTP: an administrator credits (what was
received) or fails a flagged payment, once; anything but a flagged payment is refused
and nothing changes."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest

GATEWAY = {"id": None, "type": "gateway", "metadata": {"provider": "paystack"}}


@pytest.fixture
def flagged(fake_gateway, wallet):
    """flagged(amount, received) -> (client, account id, payment): a top-up the gateway
    reports paid with another amount (an underpayment), so flagged by the consumer's
    statement."""
    from ledgerline.db import transaction
    from ledgerline.payments import store

    def make(amount: str = "5000.00", received: str = "4000.00") -> tuple[Any, str, dict[str, Any]]:
        client, account_id = wallet("NGN")
        r = client.post(
            "/v1/topups",
            idempotency_key=True,
            json={"account_id": account_id, "amount": amount, "currency": "NGN", "provider": "paystack"},
        )
        assert r.status_code == 201, r.text
        payment = r.json()
        event = {"event_id": f"charge.success:{uuid.uuid4()}", "type": "charge.success",
                 "reference": payment["reference"], "amount": received, "currency": "NGN", "status": "succeeded"}  # fmt: skip
        gateway = {"provider_id": "1", "amount": received, "currency": "NGN", "status": "succeeded"}
        result = transaction(
            lambda cur: store.confirm(
                cur, provider="paystack", event=event, decision="flagged", actor=GATEWAY, gateway=gateway,
                reason="the gateway reports 4000.00 NGN; the payment was created for 5000.00 NGN",
            )
        )  # fmt: skip
        assert result.outcome == "flagged"
        return client, account_id, payment

    return make


def posted(client, account_id: str) -> str:
    return client.get(f"/v1/accounts/{account_id}").json()["balance"]["posted"]["amount"]


def resolve(admin, payment_id: str, key: str | None = None, **body: Any):
    return admin.post(f"/v1/admin/payments/{payment_id}/resolve", idempotency_key=key or True, json=body)


def test_an_admin_credits_what_was_received_once(admin, flagged, owner_conn):
    client, account_id, payment = flagged()
    key = str(uuid.uuid4())

    r = resolve(admin, payment["id"], key, outcome="credit", amount="4000.00", reason="customer paid 4000 only")
    again = resolve(admin, payment["id"], key, outcome="credit", amount="4000.00", reason="customer paid 4000 only")
    twice = resolve(admin, payment["id"], outcome="credit", reason="once more")
    reused = resolve(admin, payment["id"], key, outcome="fail", reason="customer paid 4000 only")

    assert r.status_code == 200, r.text
    resolved = r.json()
    assert (resolved["status"], resolved["reason"]) == ("succeeded", "customer paid 4000 only")
    assert resolved["transaction_id"]
    assert again.json() == resolved and again.headers.get("Idempotent-Replayed") == "true"
    assert (twice.status_code, twice.json()["code"]) == (409, "invalid_state_transition")
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    assert posted(client, account_id) == "4000.00"
    assert client.get(f"/v1/payments/{payment['id']}").json()["status"] == "succeeded"
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT action, actor_type, metadata->>'reason' FROM audit_log"
            " WHERE action LIKE 'payment.resol%%' AND (resource_id = %s OR metadata->'request'->>'payment_id' = %s)"
            " ORDER BY occurred_at",
            (payment["id"], payment["id"]),
        )
        # One row for the resolution, one for the refused second one (the replay adds none
        # of its own kind: it is audited as idempotency.replayed).
        assert cur.fetchall() == [
            ("payment.resolved", "admin", "customer paid 4000 only"),
            ("payment.resolution_failed", "admin", None),
        ]


def test_an_admin_fails_a_flagged_payment_and_nothing_is_credited(admin, flagged):
    client, account_id, payment = flagged()

    r = resolve(admin, payment["id"], outcome="fail", reason="chargeback risk, refunded at the gateway")

    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["transaction_id"]) == ("failed", None)
    assert posted(client, account_id) == "0.00"


def test_two_admins_racing_credit_once(admin, flagged, owner_conn):
    client, account_id, payment = flagged()
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def go() -> None:
        barrier.wait(timeout=30)
        statuses.append(resolve(admin, payment["id"], outcome="credit", reason="reviewed, paid in full").status_code)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(statuses) == [200, 409, 409, 409]
    assert Decimal(posted(client, account_id)) == Decimal("5000.00")
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM transactions WHERE reference = %s", (f"paystack:{payment['reference']}",))
        assert cur.fetchone()[0] == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"outcome": "credit", "reason": "ok", "amount": "1.00"}, 422, "validation_error"),
        ({"outcome": "credit", "reason": "fine reason", "amount": "1.001"}, 422, "validation_error"),
        ({"outcome": "credit", "reason": "fine reason", "amount": "0"}, 422, "validation_error"),
        ({"outcome": "refund", "reason": "fine reason"}, 422, "validation_error"),
    ],
)
def test_a_bad_resolution_is_refused_and_changes_nothing(admin, flagged, body, status, code):
    client, account_id, payment = flagged()

    r = resolve(admin, payment["id"], **body)

    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert client.get(f"/v1/payments/{payment['id']}").json()["status"] == "flagged"
    assert posted(client, account_id) == "0.00"


def test_only_a_flagged_payment_of_ours_is_resolved_and_only_by_an_admin(admin, flagged, fake_gateway, wallet):
    client, account_id, payment = flagged()
    pending = client.post(
        "/v1/topups",
        idempotency_key=True,
        json={"account_id": account_id, "amount": "1.00", "currency": "NGN", "provider": "paystack"},
    ).json()

    by_user = resolve(client, payment["id"], outcome="credit", reason="let me in")
    not_flagged = resolve(admin, pending["id"], outcome="credit", reason="not flagged")
    missing = resolve(admin, str(uuid.uuid4()), outcome="credit", reason="no such payment")
    not_an_id = resolve(admin, "not-a-uuid", outcome="credit", reason="no such payment")

    assert by_user.status_code == 403
    assert (not_flagged.status_code, not_flagged.json()["code"]) == (409, "invalid_state_transition")
    assert (missing.status_code, not_an_id.status_code) == (404, 404)
    assert posted(client, account_id) == "0.00"


def test_a_resolution_that_crashes_midway_leaves_no_trace_and_its_retry_credits_once(admin, flagged, owner_conn):
    from tests.faults import posting_fault

    client, account_id, payment = flagged()
    key = str(uuid.uuid4())

    with posting_fault(owner_conn, "Top-up via paystack (resolved)"):
        crashed = resolve(admin, payment["id"], key, outcome="credit", reason="reviewed, paid in full")

    assert (crashed.status_code, crashed.json()["code"]) == (500, "internal_error")
    assert "secret internals" not in crashed.text
    assert client.get(f"/v1/payments/{payment['id']}").json()["status"] == "flagged"
    assert posted(client, account_id) == "0.00"

    retried = resolve(admin, payment["id"], key, outcome="credit", reason="reviewed, paid in full")

    assert retried.status_code == 200 and retried.headers.get("Idempotent-Replayed") is None
    assert posted(client, account_id) == "5000.00"
