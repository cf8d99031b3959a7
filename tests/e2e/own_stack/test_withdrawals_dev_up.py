"""Withdrawals through the whole local stack as `make run` starts it (ledgerline dev up):
its API, its queue workers (gateway-payouts, gateway-webhooks), its outbox relay and its
fake gateway, driven over HTTP only. One withdrawal approved and paid out, one whose
payout fails: the ledger stays balanced and the wallet right."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

import pyotp
import pytest
import requests

from tests.e2e.own_stack.stack import LocalStack
from tests.registration import poster, register_and_verify

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple 9"
DESTINATION = {"bank_code": "058", "account_number": "0123456789", "account_name": "Ada Obi"}


class Stack:
    def __init__(self, local: LocalStack) -> None:
        self.local = local
        self.api, self.fake, self.data_dir = local.api, local.fake, local.data_dir

    def call(self, method: str, path: str, token: str | None = None, key: bool = False, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if key:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return requests.request(method, self.api + path, headers=headers, timeout=30, **kw)

    def login(self, email: str, otp: str | None = None) -> str:
        body = {"email": email, "password": PASSWORD, **({"otp": otp} if otp else {})}
        r = self.call("POST", "/v1/auth/login", json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> Stack:
    return Stack(shared_stack)


@pytest.fixture(scope="module")
def admin(stack: Stack) -> str:
    """An administrator made with the CLI, enrolled in TOTP, logged in with a recovery code."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.test"
    made = stack.local.cli("users", "create", "--email", email, "--password", PASSWORD, "--role", "admin", timeout=120)
    assert made.returncode == 0, made.stderr
    enrolling = stack.login(email)
    setup = stack.call("POST", "/v1/auth/otp/setup", enrolling).json()
    verified = stack.call("POST", "/v1/auth/otp/verify", enrolling, json={"otp": pyotp.TOTP(setup["secret"]).now()})
    assert verified.status_code == 200, verified.text
    return stack.login(email, otp=setup["recovery_codes"][0])


@pytest.fixture(scope="module")
def user(stack: Stack, admin: str) -> tuple[str, str]:
    """A registered user's token and a wallet of theirs with 1,000.00 NGN."""
    email = f"user-{uuid.uuid4().hex[:8]}@example.test"
    body = {"email": email, "password": PASSWORD, "full_name": "Ada Obi"}
    register_and_verify(poster(stack.api), body, data_dir=stack.data_dir)
    token = stack.login(email)
    account = stack.call("POST", "/v1/accounts", token, json={"currency": "NGN"}).json()["id"]
    funded = stack.call("POST", "/v1/admin/adjustments", admin, key=True, json={
        "account_id": account, "amount": "1000.00", "currency": "NGN", "direction": "credit", "reason": "funds"})  # fmt: skip
    assert funded.status_code == 201, funded.text
    return token, account


def settled(stack: Stack, token: str, wid: str, timeout: float = 90.0) -> dict[str, Any]:
    """The withdrawal once its payout settled: the workers (long-polling) and the fake's
    webhook do it; nothing here but HTTP reads."""
    deadline = time.monotonic() + timeout
    while True:
        w = stack.call("GET", f"/v1/withdrawals/{wid}", token).json()
        if w["status"] in ("paid", "failed") or time.monotonic() > deadline:
            return dict(w)
        time.sleep(0.5)


def posted(stack: Stack, token: str, account: str) -> Decimal:
    return Decimal(stack.call("GET", f"/v1/accounts/{account}", token).json()["balance"]["posted"]["amount"])


@pytest.mark.parametrize(("payout", "outcome"), [(None, "paid"), ("fail", "failed")])
def test_a_withdrawal_is_paid_or_fails_and_the_ledger_stays_balanced(stack, admin, user, payout, outcome):
    token, account = user
    requests.post(f"{stack.fake}/_fake/paystack/misbehave", json={"payout": payout}, timeout=10).raise_for_status()
    r = stack.call("POST", "/v1/withdrawals", token, key=True, json={
        "account_id": account, "amount": "300.00", "currency": "NGN", "destination": DESTINATION,
        "provider": "paystack"})  # fmt: skip
    assert r.status_code == 201, r.text
    before = posted(stack, token, account)

    approved = stack.call("POST", f"/v1/admin/withdrawals/{r.json()['id']}/approve", admin, key=True)
    assert approved.status_code == 200, approved.text

    w = settled(stack, token, r.json()["id"])
    assert w["status"] == outcome, w
    expected = before - Decimal("300.00") if outcome == "paid" else before
    assert posted(stack, token, account) == expected
    check = stack.call("GET", "/v1/admin/ledger/check", admin).json()
    assert check["ok"], check["findings"]
