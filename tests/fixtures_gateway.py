"""The local fake payment gateway for tests: one per session, on a free port, and the
settings pointed at it (``ledgerline.gateways.registry.gateway(p)`` then talks to it).

Loaded through ``pytest_plugins`` in tests/conftest.py. Tests drive it through its control
routes (docs/api.md "Local stack"), the same contract ``ledgerline gateway pay`` uses.
Misbehaviour is reset after every test that used the fake; its books are not (references
are unique per test), ``reset()`` empties them.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests

# Short enough that a "slow" gateway times out quickly, long enough for a loaded machine.
TEST_TIMEOUT_SECONDS = "2"
TEST_RETRIES = "2"


class FakeGatewayControl:
    """The fake gateway as a test sees it: its URL and its control routes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = requests.Session()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = self._http.request(method, self.url + path, timeout=60, **kw)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        return json.loads(r.text, parse_float=Decimal)  # the providers' amounts, exactly

    @property
    def webhook_url(self) -> str:
        return str(self._call("POST", "/_fake/config", json={})["webhook_url"])

    @webhook_url.setter
    def webhook_url(self, url: str) -> None:
        self._call("POST", "/_fake/config", json={"webhook_url": url})

    def pay(
        self,
        provider: str,
        reference: str,
        amount: str,
        currency: str,
        status: str = "success",
        deliver: bool = True,
        webhook_url: str | None = None,
        paid_at: datetime | None = None,
    ) -> dict[str, Any]:
        """The customer pays: ``{"delivered_status", "webhook": {"headers", "body"}}``."""
        body: dict[str, Any] = {
            "reference": reference,
            "amount": amount,
            "currency": currency,
            "status": status,
            "deliver": deliver,
        }
        if webhook_url:
            body["webhook_url"] = webhook_url
        if paid_at:
            body["paid_at"] = paid_at.isoformat()
        return dict(self._call("POST", f"/_fake/{provider}/pay", json=body))

    def misbehave(self, provider: str, **changes: Any) -> dict[str, Any]:
        return dict(self._call("POST", f"/_fake/{provider}/misbehave", json=changes))

    def behave(self, provider: str | None = None) -> None:
        for p in [provider] if provider else ["paystack", "stripe", "flutterwave"]:
            self._call("DELETE", f"/_fake/{p}/misbehave")

    def reset(self) -> None:
        self._call("POST", "/_fake/reset")

    def transactions(self, provider: str, day: date) -> Any:
        return self._call("GET", f"/_fake/{provider}/transactions", params={"date": day.isoformat()})

    def requests(self, provider: str) -> list[str]:
        return list(self._call("GET", f"/_fake/{provider}/requests")["requests"])

    def deliveries(self, provider: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/_fake/{provider}/deliveries")["deliveries"])

    def settle(
        self, provider: str, reference: str, status: str = "success", reason: str | None = None
    ) -> dict[str, Any]:
        """Deliver a held payout's outcome (under ``misbehave(payout="hold")``)."""
        return dict(
            self._call(
                "POST", f"/_fake/{provider}/payouts/{reference}/settle", json={"status": status, "reason": reason}
            )
        )

    def wait_for_delivery(self, provider: str, reference: str, timeout: float = 10.0) -> dict[str, Any]:
        """The first webhook about ``reference`` (payout outcomes are sent a moment after
        the payout is created, as the providers do)."""
        deadline = time.monotonic() + timeout
        while True:
            for d in self.deliveries(provider):
                if f'"{reference}"' in d["webhook"]["body"]:
                    return d
            if time.monotonic() > deadline:
                raise AssertionError(f"no {provider} webhook about {reference} within {timeout}s")
            time.sleep(0.05)


@contextlib.contextmanager
def settings_from_env(**values: str) -> Iterator[None]:
    """These environment variables set, the settings read again; both restored after."""
    from ledgerline import config

    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    config.settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        config.settings.cache_clear()


@pytest.fixture(scope="session")
def fake_gateway():
    from ledgerline.local.fake_gateway import FakeGateway

    server = FakeGateway(port=0).start()
    try:
        with settings_from_env(
            LEDGERLINE_FAKE_GATEWAY_PORT=str(server.port),
            LEDGERLINE_GATEWAY_TIMEOUT_SECONDS=os.environ.get(
                "LEDGERLINE_GATEWAY_TIMEOUT_SECONDS", TEST_TIMEOUT_SECONDS
            ),
            LEDGERLINE_GATEWAY_RETRIES=os.environ.get("LEDGERLINE_GATEWAY_RETRIES", TEST_RETRIES),
        ):
            yield FakeGatewayControl(server.url)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fake_gateway_behaves_after_each_test(request):
    yield
    control = request.node.funcargs.get("fake_gateway") if hasattr(request.node, "funcargs") else None
    if control is not None:
        control.behave()


@pytest.fixture
def fake_gateway_to_api(fake_gateway, api):
    """The fake gateway delivering its webhooks to this run's API (e2e tests)."""
    previous = fake_gateway.webhook_url
    fake_gateway.webhook_url = api
    yield fake_gateway
    fake_gateway.webhook_url = previous
