"""Secrets Manager reads, cached per process for a few minutes.

A warm Lambda reads each secret once, not once per request; the short lifetime lets a
rotated value take effect without a redeploy.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any
from urllib.parse import quote

from ledgerline.aws import clients

CACHE_SECONDS = 300.0

_lock = threading.Lock()
_cache: dict[str, tuple[float, str]] = {}


class SecretError(RuntimeError):
    """A secret is missing, unreadable or not in the expected shape."""


def get_string(secret_id: str, *, max_age: float = CACHE_SECONDS) -> str:
    """The secret's current string value (``SecretString``)."""
    now = time.monotonic()
    with _lock:
        hit = _cache.get(secret_id)
    if hit and now - hit[0] < max_age:
        return hit[1]
    response = clients.client("secretsmanager").get_secret_value(SecretId=secret_id)
    value = response.get("SecretString")
    if value is None:
        raise SecretError(f"secret {secret_id} has no string value (binary secrets are not used here)")
    with _lock:
        _cache[secret_id] = (now, value)
    return value


def get_json(secret_id: str, *, max_age: float = CACHE_SECONDS) -> dict[str, Any]:
    """The secret's value parsed as a JSON object."""
    text = get_string(secret_id, max_age=max_age)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SecretError(f"secret {secret_id} is not JSON") from exc
    if not isinstance(value, dict):
        raise SecretError(f"secret {secret_id} is JSON but not an object")
    return value


def database_url(env_var: str) -> str:
    """A libpq URL from the RDS-style secret whose ARN is in ``env_var``.

    The secret is the JSON RDS and the CDK write: {username, password, host, port,
    dbname}. TLS is required: the database is never reached in clear text in AWS. The
    secret's host is the cluster's writer (rotation needs it); functions are only let
    into RDS Proxy, whose endpoint LEDGERLINE_DB_HOST names, so that wins when set.
    """
    secret_id = os.environ.get(env_var)
    if not secret_id:
        raise SecretError(f"{env_var} is not set: it must hold the ARN of the database secret")
    value = get_json(secret_id)
    missing = [k for k in ("username", "password", "host") if not value.get(k)]
    if missing:
        raise SecretError(f"database secret {env_var} lacks {', '.join(missing)}")
    user = quote(str(value["username"]), safe="")
    password = quote(str(value["password"]), safe="")
    host = os.environ.get("LEDGERLINE_DB_HOST") or str(value["host"])
    port = int(value.get("port") or 5432)
    dbname = quote(str(value.get("dbname") or "ledgerline"), safe="")
    return f"postgresql://{user}:{password}@{host}:{port}/{dbname}?sslmode=require"


def reset() -> None:
    """Forget cached values (tests, or after a rotation)."""
    with _lock:
        _cache.clear()
