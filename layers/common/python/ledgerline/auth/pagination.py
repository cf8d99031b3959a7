"""Keyset pagination over (created_at DESC, id DESC) with opaque cursors."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from ledgerline import errors

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.ValidationFailed(
            f"limit must be between 1 and {MAX_LIMIT}", errors=[errors.FieldError("limit", f"use 1..{MAX_LIMIT}")]
        )
    return limit


def encode(row: dict[str, Any]) -> str:
    raw = json.dumps({"t": row["created_at"].isoformat(), "id": str(row["id"])}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode(cursor: str | None) -> tuple[datetime, UUID] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(data["t"]), UUID(data["id"])
    except (ValueError, KeyError, TypeError):
        raise errors.ValidationFailed(
            "cursor is not valid; use next_cursor from the previous page",
            errors=[errors.FieldError("cursor", "not a cursor this API issued")],
        ) from None


def page(rows: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Rows fetched with LIMIT limit + 1 → (items, next_cursor)."""
    if len(rows) > limit:
        return rows[:limit], encode(rows[limit - 1])
    return rows, None
