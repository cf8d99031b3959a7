"""Secrets Manager reads, cached per process for a few minutes.

A warm Lambda reads each secret once, not once per request; the short lifetime lets a
rotated value take effect without a redeploy.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

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


def reset() -> None:
    """Forget cached values (tests, or after a rotation)."""
    with _lock:
        _cache.clear()
