"""POST /v1/topups and GET /v1/payments/{id} over HTTP, with the fake gateway behind the
adapters: a pending payment and its checkout, nothing credited; the same Idempotency-Key
gets the same payment and the same checkout; a gateway outage after the payment exists
is a 503 the retry heals; bad requests change nothing; another user's payment is not
found."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest


@pytest.fixture
def fake(fake_gateway):
    """The session's fake gateway (tests/fixtures_gateway.py); the adapters call it."""
    return fake_gateway


def body(account: str, **changes: str) -> dict[str, str]:
    return {"account_id": account, "amount": "5000.00", "currency": "NGN", "provider": "paystack", **changes}


def _books(fake, provider: str) -> list:
    """The fake's books of today, in the provider's report format."""
    report = fake.transactions(provider, datetime.now(UTC).date())
    return report.get("data") or report.get("items") or [report]


def counts(owner_conn, account_id: str) -> tuple[int, int, int]:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments WHERE account_id = %s", (account_id,))
        payments = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM entries WHERE account_id = %s", (account_id,))
        entries = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'payment.initiated' AND payload_after->>'account_id' = %s",
            (account_id,),
        )
        return payments, entries, cur.fetchone()[0]


@pytest.mark.parametrize(
    ("provider", "currency", "checkout_key"),
    [("paystack", "NGN", "authorization_url"), ("stripe", "USD", "client_secret"), ("flutterwave", "NGN", "link")],
)
def test_a_topup_is_a_pending_payment_with_its_checkout_and_credits_nothing(
    fake, wallet, owner_conn, provider, currency, checkout_key
):
    client, account_id = wallet(currency)

    r = client.post("/v1/topups", idempotency_key=True, json=body(account_id, currency=currency, provider=provider))

    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["status"], created["provider"], created["amount"]) == (
        "pending",
        provider,
        {"amount": "5000.00", "currency": currency},
    )
    assert checkout_key in created["checkout"], created["checkout"]
    assert any(created["reference"] in str(row) for row in _books(fake, provider))
    assert client.get(f"/v1/payments/{created['id']}").json() == created
    assert client.get(f"/v1/accounts/{account_id}").json()["balance"]["posted"]["amount"] == "0.00"
    assert counts(owner_conn, account_id) == (1, 0, 1)


def test_the_same_key_gets_the_same_payment_and_checkout_and_asks_the_gateway_once(fake, wallet, owner_conn):
    client, account_id = wallet("NGN")
    key = str(uuid.uuid4())
    before = len(fake.requests("paystack"))

    first = client.post("/v1/topups", idempotency_key=key, json=body(account_id))
    again = client.post("/v1/topups", idempotency_key=key, json=body(account_id))
    other = client.post("/v1/topups", idempotency_key=key, json=body(account_id, amount="7.00"))

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert fake.requests("paystack")[before:] == ["POST /transaction/initialize"]
    assert counts(owner_conn, account_id) == (1, 0, 1)


def test_five_requests_racing_with_one_key_open_one_payment(fake, wallet, owner_conn):
    client, account_id = wallet("NGN")
    key = str(uuid.uuid4())
    barrier = threading.Barrier(5)
    answers = []

    def post() -> None:
        barrier.wait(timeout=30)
        answers.append(client.post("/v1/topups", idempotency_key=key, json=body(account_id)))

    threads = [threading.Thread(target=post) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    ok = [a for a in answers if a.status_code == 201]
    assert ok and all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    assert len({a.json()["id"] for a in ok}) == 1
    assert len({str(a.json()["checkout"]) for a in ok}) == 1
    assert counts(owner_conn, account_id) == (1, 0, 1)


def test_a_gateway_outage_after_the_payment_exists_is_a_503_the_retry_heals(fake, wallet, owner_conn):
    client, account_id = wallet("USD")
    key = str(uuid.uuid4())
    fake.misbehave("stripe", unavailable=3)  # the first call and both of its retries

    down = client.post("/v1/topups", idempotency_key=key, json=body(account_id, currency="USD", provider="stripe"))

    assert (down.status_code, down.json()["code"]) == (503, "gateway_unavailable")
    assert down.headers["Content-Type"] == "application/problem+json"
    assert counts(owner_conn, account_id) == (1, 0, 1)  # the payment exists, pending, once

    healed = client.post("/v1/topups", idempotency_key=key, json=body(account_id, currency="USD", provider="stripe"))

    assert healed.status_code == 201 and healed.json()["checkout"]["client_secret"]
    assert client.get(f"/v1/payments/{healed.json()['id']}").json()["checkout"] == healed.json()["checkout"]
    assert counts(owner_conn, account_id) == (1, 0, 1)


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"amount": "10.001"}, 422, "validation_error"),
        ({"amount": "-5"}, 422, "validation_error"),
        ({"currency": "USD"}, 422, "validation_error"),
        ({"currency": "XXX"}, 422, "validation_error"),
        ({"provider": "paypal"}, 422, "validation_error"),
        ({"account_id": str(uuid.uuid4())}, 404, "not_found"),
    ],
)
def test_a_bad_topup_is_refused_and_changes_nothing(fake, wallet, owner_conn, changes, status, code):
    client, account_id = wallet("NGN")

    r = client.post("/v1/topups", idempotency_key=True, json=body(account_id, **changes))

    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert counts(owner_conn, account_id)[:2] == (0, 0)


def test_a_topup_into_another_users_wallet_is_not_found(fake, wallet, owner_conn):
    mine, _ = wallet("NGN")
    _, theirs = wallet("NGN")

    r = mine.post("/v1/topups", idempotency_key=True, json=body(theirs))

    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert counts(owner_conn, theirs)[:2] == (0, 0)


def test_another_users_payment_is_not_found(fake, wallet, person):
    client, account_id = wallet("NGN")
    created = client.post("/v1/topups", idempotency_key=True, json=body(account_id)).json()

    assert person().get(f"/v1/payments/{created['id']}").status_code == 404
    assert client.get(f"/v1/payments/{uuid.uuid4()}").status_code == 404
    assert client.get("/v1/payments/not-a-uuid").status_code == 404


def test_a_topup_needs_an_idempotency_key(fake, wallet):
    client, account_id = wallet("NGN")

    r = client.post("/v1/topups", json=body(account_id))

    assert (r.status_code, r.json()["code"]) == (400, "idempotency_key_required")
