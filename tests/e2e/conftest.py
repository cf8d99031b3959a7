"""End-to-end fixtures: the local API gateway on a free port, over real HTTP.

With ``LEDGERLINE_TEST_PGBOUNCER`` (``make test`` sets it when pgbouncer is installed)
every application connection goes through PgBouncer in transaction pooling mode, the
stand-in for RDS Proxy's restrictions (``tests/pgbouncer.py``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests import pgbouncer
from tests.fixtures_gateway import settings_from_env


def pytest_report_header(config: Any) -> str:
    through = "PgBouncer, transaction pooling" if os.environ.get(pgbouncer.ENV) else "direct"
    return f"e2e application connections: {through}"


class Client:
    """A thin HTTP client bound to the gateway's base URL; tests read as requests."""

    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url
        self.token = token
        self.session = requests.Session()

    def request(self, method: str, path: str, *, token: str | None = None, idempotency_key: Any = None, **kw):
        headers = dict(kw.pop("headers", None) or {})
        bearer = token or self.token
        if bearer:
            headers.setdefault("Authorization", f"Bearer {bearer}")
        if idempotency_key is True:
            idempotency_key = str(uuid.uuid4())
        if idempotency_key:
            headers["Idempotency-Key"] = str(idempotency_key)
        return self.session.request(method, self.base_url + path, headers=headers, timeout=30, **kw)

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw):
        return self.request("DELETE", path, **kw)

    def as_user(self, token: str) -> Client:
        return Client(self.base_url, token)


@pytest.fixture(scope="session")
def gateway(database_url, request):
    from ledgerline.local.gateway import LocalGateway

    # Tokens need the KMS stand-in once identity is installed.
    if "aws_endpoint" in request.fixturenames or request.config.pluginmanager.hasplugin("tests.fixtures_aws"):
        request.getfixturevalue("aws_endpoint")
    with _application_connections():
        gw = LocalGateway(port=0).start()
        yield gw
        gw.stop()


@contextlib.contextmanager
def _application_connections() -> Iterator[None]:
    """Point the application role's connections at PgBouncer when asked to."""
    executable = os.environ.get(pgbouncer.ENV)
    if not executable:
        yield
        return
    from ledgerline import config
    from ledgerline.db import connection

    with pgbouncer.running(connection.app_url(), executable) as url:
        saved = os.environ.get("LEDGERLINE_APP_DATABASE_URL")
        os.environ["LEDGERLINE_APP_DATABASE_URL"] = url
        config.settings.cache_clear()
        connection.reset_urls()
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("LEDGERLINE_APP_DATABASE_URL", None)
            else:
                os.environ["LEDGERLINE_APP_DATABASE_URL"] = saved
            config.settings.cache_clear()
            connection.reset_urls()


@pytest.fixture(scope="session")
def api(gateway) -> str:
    """Base URL of the running local gateway."""
    return gateway.url


@pytest.fixture
def client(api) -> Client:
    return Client(api)


def session_token(user_id: Any, role: str) -> str:
    """An access token of a new session of the user, as a password login opens one
    (amr pwd: administrators and auditors get the enrolment routes only)."""
    from ledgerline.auth import sessions
    from ledgerline.db import transaction

    started = transaction(lambda cur: sessions.start(cur, user_id, role, sessions.Client(), amr=["pwd"]))
    return started.access_token


@pytest.fixture(scope="session")
def make_user(gateway) -> Callable[..., dict[str, Any]]:
    """Create a user directly in the database and open a session for it.

    Returns ``{"id", "email", "role", "token", "client"}``.
    """
    from ledgerline.audit import Actor
    from ledgerline.auth import users
    from ledgerline.db import transaction

    def make(role: str = "user", *, password: str = "correct horse battery staple 9") -> dict[str, Any]:
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.test"
        user = transaction(
            lambda cur: users.create_user(
                cur, email=email, password=password, full_name=f"Test {role}", role=role, actor=Actor.system("tests")
            )
        )
        token = session_token(user.id, role)
        return {**user.to_json(), "password": password, "token": token, "client": Client(gateway.url, token)}

    return make


def enrolled(api: str, make_user: Callable[..., dict], role: str) -> Client:
    """The client of a new user of ``role`` enrolled in TOTP (staff routes require it) and
    logged in with a recovery code (TOTP codes are single-use per 30 s step)."""
    import pyotp

    client = Client(api)
    user = make_user(role)
    setup = client.post("/v1/auth/otp/setup", token=user["token"]).json()
    client.post("/v1/auth/otp/verify", token=user["token"], json={"otp": pyotp.TOTP(setup["secret"]).now()})
    login = client.post(
        "/v1/auth/login", json={"email": user["email"], "password": user["password"], "otp": setup["recovery_codes"][0]}
    )
    assert login.status_code == 200, login.text
    return client.as_user(login.json()["access_token"])


@pytest.fixture(scope="module")
def fake_server(gateway, aws_endpoint):
    """A fake gateway in this process (its books readable), delivering to this run's API;
    the adapters call it, and do not retry (an outage is an outage at once)."""
    from ledgerline.local.fake_gateway import FakeGateway

    server = FakeGateway(port=0, webhook_url=gateway.url).start()
    try:
        with settings_from_env(LEDGERLINE_FAKE_GATEWAY_PORT=str(server.port), LEDGERLINE_GATEWAY_RETRIES="0"):
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def admin(api, make_user) -> Client:
    return enrolled(api, make_user, "admin")


@pytest.fixture(scope="module")
def auditor(api, make_user) -> Client:
    return enrolled(api, make_user, "auditor")


@pytest.fixture(scope="module")
def person(api, gateway) -> Callable[..., Client]:
    """person(role) -> the client of a new user: a users row and a session's real signed
    access token (no password, so no password hashing: for tests about money, not about
    logging in)."""
    from ledgerline.db import transaction
    from ledgerline.ledger.testing import create_user

    def make(role: str = "user") -> Client:
        user_id = transaction(lambda cur: create_user(cur, role))
        return Client(api, session_token(user_id, role))

    return make


@pytest.fixture(scope="module")
def wallet(admin, person):
    """wallet(currency, funded, client=None) -> (client, account id): a new user's wallet,
    or another wallet of ``client``."""

    def make(currency="NGN", funded=None, client=None):
        client = client or person()
        account = client.post("/v1/accounts", json={"currency": currency})
        assert account.status_code == 201, account.text
        account_id = account.json()["id"]
        if funded:
            r = admin.post(
                "/v1/admin/adjustments",
                idempotency_key=True,
                json={
                    "account_id": account_id,
                    "amount": funded,
                    "currency": currency,
                    "direction": "credit",
                    "reason": "test funds",
                },
            )
            assert r.status_code == 201, r.text
        return client, account_id

    return make
