"""Connections: the only module (with ``tx``) that knows the driver.

A Lambda instance handles one request at a time and keeps one connection across warm
invocations; the local gateway runs handlers on many threads, so the cache is per thread.
"""

from __future__ import annotations

import contextlib
import json
import threading
from decimal import Decimal
from functools import cache, partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


@cache
def owner_url() -> str:
    """The migrator's connection: DATABASE_URL, an AWS secret, or the embedded server."""
    cfg = settings()
    if cfg.database_url:
        return cfg.database_url
    if cfg.environment == "aws":
        from ledgerline.aws import secrets

        return secrets.database_url("LEDGERLINE_DB_OWNER_SECRET_ARN")
    from ledgerline.db import embedded

    server = embedded.ensure_running(cfg.data_dir)
    embedded.ensure_database(server, "ledgerline")
    return with_database(server, "ledgerline")


@cache
def app_url() -> str:
    """The application role's connection (what every handler uses)."""
    cfg = settings()
    if cfg.app_database_url:
        return cfg.app_database_url
    if cfg.environment == "aws":
        from ledgerline.aws import secrets

        return secrets.database_url("LEDGERLINE_DB_SECRET_ARN")
    return with_user(owner_url(), APP_ROLE)


def connect(url: str, *, autocommit: bool = False, application_name: str = "ledgerline") -> Any:
    timeout = settings().statement_timeout_ms
    conn = psycopg2.connect(
        url,
        application_name=application_name,
        connect_timeout=5,
        # A statement that runs longer than this is a bug or an attack; idle-in-transaction
        # sessions would hold row locks on money.
        options=f"-c statement_timeout={timeout} -c idle_in_transaction_session_timeout={timeout * 6} -c timezone=UTC",
    )
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
