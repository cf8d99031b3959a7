"""A top-up through the whole local stack (`make run`, i.e. `ledgerline dev up` in its own
process: API, queue workers, scheduler, moto, the fake gateway), over HTTP only: the fake
gateway delivers the signed webhook to the API, the gateway-webhooks worker credits the
wallet, five more deliveries at once credit nothing more, and the user's notification
reaches the local mailbox."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.e2e.own_stack.stack import LocalStack
from tests.registration import poster, register_and_verify

pytestmark = pytest.mark.slow


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def test_a_paid_topup_credits_once_through_the_local_stack(shared_stack: LocalStack):
    stack = shared_stack
    api, fake = stack.api, stack.fake
    email, password = f"stack-{uuid.uuid4().hex[:8]}@example.test", "correct horse battery staple 9"
    body = {"email": email, "password": password, "full_name": "Ada Obi"}
    register_and_verify(poster(api), body, data_dir=stack.data_dir)
    login = requests.post(f"{api}/v1/auth/login", json={"email": email, "password": password}, timeout=30)
    assert login.status_code == 200, login.text
    user = requests.Session()
    user.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    account = user.post(f"{api}/v1/accounts", json={"currency": "NGN"}, timeout=30).json()["id"]

    topup = user.post(f"{api}/v1/topups", headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=30,
                      json={"account_id": account, "amount": "2500.00", "currency": "NGN", "provider": "paystack"})  # fmt: skip
    assert topup.status_code == 201, topup.text
    payment = topup.json()
    assert payment["checkout"]["authorization_url"]

    # The customer pays: the fake gateway delivers Paystack's signed webhook to the API.
    paid = requests.post(f"{fake}/_fake/paystack/pay", timeout=60,
                         json={"reference": payment["reference"], "amount": "2500.00", "currency": "NGN"})  # fmt: skip
    assert paid.status_code == 200 and paid.json()["delivered_status"] == 200, paid.text

    def balance() -> str:
        return str(user.get(f"{api}/v1/accounts/{account}", timeout=30).json()["balance"]["posted"]["amount"])

    _until(lambda: balance() == "2500.00", 60, "the credit")
    # Five more deliveries of the same webhook, at once: received, and nothing more credited.
    webhook = paid.json()["webhook"]
    barrier = threading.Barrier(5)
    statuses: list[int] = []

    def redeliver() -> None:
        barrier.wait(timeout=30)
        r = requests.post(f"{api}/v1/webhooks/paystack", data=webhook["body"].encode(), headers=webhook["headers"],
                          timeout=30)  # fmt: skip
        statuses.append(r.status_code)

    threads = [threading.Thread(target=redeliver) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert statuses == [200] * 5

    mailbox = stack.data_dir / "mailbox" / "notifications.jsonl"

    def notified() -> list[dict[str, Any]]:
        if not mailbox.exists():
            return []
        lines = [json.loads(line) for line in mailbox.read_text().splitlines() if line.strip()]
        return [m for m in lines if m.get("type") == "payment.received" and m.get("to") == email]

    (message,) = _until(notified, 60, "the payment notification")
    assert "2500.00 NGN" in message["subject"]
    _until(lambda: _queued(stack, "ledgerline-gateway-webhooks") == 0, 60, "the redeliveries consumed")
    assert balance() == "2500.00"
    read = user.get(f"{api}/v1/payments/{payment['id']}", timeout=30).json()
    assert (read["status"], read["transaction_id"] is not None) == ("succeeded", True)
    assert len(notified()) == 1


def _queued(stack: LocalStack, queue: str) -> int:
    """Messages in the stack's queue, waiting or in flight (moto's SQS)."""
    sqs = stack.aws("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)
