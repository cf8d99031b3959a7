"""Connections: the only module (with ``tx``) that knows the driver.

A Lambda instance handles one request at a time and keeps one connection across warm
invocations; the local gateway runs handlers on many threads, so the cache is per thread.

Nothing session-level is sent at connect: RDS Proxy refuses startup options ("RDS Proxy
currently doesn't support command-line options") and a transaction-pooling proxy would
carry no ``SET`` from one transaction to the next. Timeouts and the time zone are set on
the application role by the migrator (``ledgerline.db.migrate``), so every backend of
that role starts with them, whoever opened it.

In AWS the functions reach the database through RDS Proxy with IAM authentication: the
password is a token signed at each connect (``ledgerline.aws.rds``), never a stored
secret, so a rotation of the proxy's own secret never breaks a warm function; TLS is
verified against the proxy's name with the Amazon root CAs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import threading
from decimal import Decimal
from functools import cache, partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from ledgerline.config import settings
from ledgerline.jsonutil import dumps

APP_ROLE = "ledgerline_app"
OWNER_ROLE = "ledgerline_owner"

# NUMERIC already arrives as Decimal; JSON must too, never as float.
psycopg2.extras.register_default_jsonb(loads=partial(json.loads, parse_float=Decimal), globally=True)
psycopg2.extras.register_default_json(loads=partial(json.loads, parse_float=Decimal), globally=True)
psycopg2.extras.register_uuid()
psycopg2.extensions.register_adapter(dict, partial(psycopg2.extras.Json, dumps=dumps))

_local = threading.local()


def with_user(url: str, user: str, password: str | None = None) -> str:
    """The same server and database, another login role."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = user + (f":{password}" if password else ":") + "@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


@cache
def owner_url() -> str:
    """The migrator's connection: DATABASE_URL, or in AWS the proxy as the master user."""
    cfg = settings()
    if cfg.database_url:
        return cfg.database_url
    if cfg.environment == "aws":
        if not cfg.db_owner_user:
            raise RuntimeError("LEDGERLINE_DB_OWNER_USER is not set: the migrator needs the master user's name")
        return proxy_url(cfg.db_owner_user)
    raise RuntimeError(
        "DATABASE_URL is not set. `make run` (ledgerline dev up) and the ledgerline command start"
        " the embedded PostgreSQL and set it; elsewhere, set it to the migrator's connection."
    )


@cache
def app_url() -> str:
    """The application role's connection (what every handler uses)."""
    cfg = settings()
    if cfg.app_database_url:
        return cfg.app_database_url
    if cfg.environment == "aws":
        return proxy_url(cfg.db_user)
    return with_user(owner_url(), APP_ROLE)


def proxy_url(user: str) -> str:
    """RDS Proxy as ``user``, TLS verified against the proxy's name (``verify-full``).

    Through an operator's port forward (``LEDGERLINE_DB_TUNNEL=127.0.0.1:15432``) libpq
    connects to the tunnel (``hostaddr``) while TLS and the IAM token still name the proxy.
    """
    cfg = settings()
    if not cfg.db_host:
        raise RuntimeError("LEDGERLINE_DB_HOST is not set: it must name the RDS Proxy endpoint")
    params = {"sslmode": "verify-full", "sslrootcert": ca_bundle()}
    port = cfg.db_port
    if cfg.db_tunnel:
        address, _, tunnel_port = cfg.db_tunnel.rpartition(":")
        params["hostaddr"], port = address, int(tunnel_port)
    name = quote(cfg.db_name, safe="")
    return f"postgresql://{quote(user, safe='')}@{cfg.db_host}:{port}/{name}?{urlencode(params)}"


def ca_bundle() -> str:
    """The CA bundle that verifies the proxy: RDS Proxy presents an ACM certificate under
    the Amazon root CAs, which botocore's bundle (in every Lambda runtime) carries."""
    configured = settings().db_sslrootcert
    if configured:
        return configured
    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        raise RuntimeError("botocore is not installed; set LEDGERLINE_DB_SSLROOTCERT to a CA bundle")
    return str(Path(spec.origin).parent / "cacert.pem")


def connect(url: str, *, autocommit: bool = False, application_name: str = "ledgerline") -> Any:
    """A new connection; with IAM authentication, the token is signed now, for the user in
    ``url`` and the proxy's name and port (which a tunnel's local address does not change)."""
    cfg = settings()
    password: dict[str, str] = {}
    if cfg.db_iam_auth:
        from ledgerline.aws import rds

        parts = urlsplit(url)
        host = cfg.db_host or parts.hostname or ""
        password["password"] = rds.auth_token(host=host, port=cfg.db_port, user=unquote(parts.username or ""))
    conn = psycopg2.connect(url, application_name=application_name, connect_timeout=5, **password)
    conn.autocommit = autocommit
    return conn


def get_connection() -> Any:
    """This thread's warm application connection, reconnecting if it was lost. It is in
    autocommit mode: ``transaction`` sends BEGIN and COMMIT itself (``ledgerline.db.tx``)."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = connect(app_url(), autocommit=True)
        _local.conn = conn
    return conn


def discard_connection() -> None:
    """Drop this thread's connection (after it broke), so the next use reconnects."""
    conn = getattr(_local, "conn", None)
    _local.conn = None
    if conn is not None and not conn.closed:
        with contextlib.suppress(psycopg2.Error):
            conn.close()


def reset_urls() -> None:
    """Forget cached URLs (tests point the library at a throwaway database)."""
    owner_url.cache_clear()
    app_url.cache_clear()
    discard_connection()
