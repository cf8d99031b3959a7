"""How the functions reach the database in AWS: RDS Proxy, IAM authentication (a token
signed per connection, no password anywhere), TLS verified against the proxy's name,
and nothing sent at connect that RDS Proxy would refuse."""

from __future__ import annotations

from pathlib import Path

import psycopg2.extensions
import pytest

from ledgerline import config
from ledgerline.db import connection

PROXY = "ledgerline.proxy-abc123.eu-west-1.rds.amazonaws.com"


class _Connection:
    autocommit = False


@pytest.fixture
def in_aws(aws_endpoint, monkeypatch):
    for name in ("DATABASE_URL", "LEDGERLINE_APP_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEDGERLINE_ENV", "aws")
    monkeypatch.setenv("LEDGERLINE_DB_HOST", PROXY)
    monkeypatch.setenv("LEDGERLINE_DB_IAM_AUTH", "true")
    monkeypatch.setenv("LEDGERLINE_DB_OWNER_USER", "ledgerline_master")
    config.settings.cache_clear()
    connection.reset_urls()
    opened: list[dict] = []
    monkeypatch.setattr(
        connection.psycopg2, "connect", lambda url, **kw: opened.append({"url": url, **kw}) or _Connection()
    )
    yield opened
    monkeypatch.undo()
    config.settings.cache_clear()
    connection.reset_urls()


def test_the_application_connects_to_the_proxy_with_an_iam_token_and_verified_tls(in_aws):
    url = connection.app_url()
    connection.connect(url)

    [opened] = in_aws
    dsn = psycopg2.extensions.parse_dsn(opened["url"])
    assert (dsn["host"], dsn["port"], dsn["user"], dsn["dbname"]) == (PROXY, "5432", "ledgerline_app", "ledgerline")
    assert dsn["sslmode"] == "verify-full" and "Amazon Root CA 1" in Path(dsn["sslrootcert"]).read_text()
    assert "password" not in dsn  # nothing stored: the token is signed at connect
    assert opened["password"].startswith(f"{PROXY}:5432/?Action=connect&DBUser=ledgerline_app")
    assert "options" not in opened and "options" not in dsn


def test_every_new_connection_gets_a_fresh_token(in_aws):
    url = connection.app_url()
    connection.connect(url)
    connection.connect(url)

    assert len(in_aws) == 2 and all(o["password"] for o in in_aws)


def test_the_migrator_connects_through_the_proxy_as_the_master_user(in_aws):
    connection.connect(connection.owner_url())

    [opened] = in_aws
    assert psycopg2.extensions.parse_dsn(opened["url"])["user"] == "ledgerline_master"
    assert "DBUser=ledgerline_master" in opened["password"]


def test_a_tunnel_to_the_proxy_still_signs_for_the_proxys_name(in_aws, monkeypatch):
    # The operator's CLI through a Session Manager port forward: libpq connects to the
    # tunnel (hostaddr), TLS and the token name the proxy.
    monkeypatch.setenv("LEDGERLINE_DB_TUNNEL", "127.0.0.1:15432")
    config.settings.cache_clear()
    connection.reset_urls()

    connection.connect(connection.app_url())

    dsn = psycopg2.extensions.parse_dsn(in_aws[-1]["url"])
    assert (dsn["host"], dsn["hostaddr"], dsn["port"]) == (PROXY, "127.0.0.1", "15432")
    assert in_aws[-1]["password"].startswith(f"{PROXY}:5432/?Action=connect&DBUser=ledgerline_app")


def test_without_the_proxy_endpoint_the_error_says_what_to_set(in_aws, monkeypatch):
    monkeypatch.delenv("LEDGERLINE_DB_HOST")
    config.settings.cache_clear()
    connection.reset_urls()

    with pytest.raises(RuntimeError, match="LEDGERLINE_DB_HOST"):
        connection.app_url()
