"""End-to-end fixtures: the local API gateway on a free port, over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests


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
    gw = LocalGateway(port=0).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def api(gateway) -> str:
    """Base URL of the running local gateway."""
    return gateway.url


@pytest.fixture
def client(api) -> Client:
    return Client(api)


@pytest.fixture(scope="session")
def make_user(gateway) -> Callable[..., dict[str, Any]]:
    """Create a user directly in the database and mint an access token for it.

    Returns ``{"id", "email", "role", "token", "client"}``.
    """
    from ledgerline.audit import Actor
    from ledgerline.auth import tokens, users
    from ledgerline.db import transaction

    def make(role: str = "user", *, password: str = "correct horse battery staple 9") -> dict[str, Any]:
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.test"
        user = transaction(
            lambda cur: users.create_user(
                cur, email=email, password=password, full_name=f"Test {role}", role=role, actor=Actor.system("tests")
            )
        )
        token, _ = tokens.issue_access_token(user["id"], role)
        return {**user, "email": email, "password": password, "token": token, "client": Client(gateway.url, token)}

    return make
