"""Keyset pagination with opaque cursors: the one paginator of every list route.

A cursor is the sort key of the last item of a page, ``(created_at, id)``, as base64url
text. It is untrusted input: anything this module did not write (another format, a
naive time, an id that is not a UUID, a year PostgreSQL cannot hold) is a 422, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from ledgerline import errors

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 200
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.ValidationFailed(
            f"limit must be between 1 and {MAX_LIMIT}",
            errors=[errors.FieldError("limit", f"use 1..{MAX_LIMIT} (default {DEFAULT_LIMIT})")],
        )
    return limit


def encode(created_at: datetime, item_id: UUID) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The sort key a cursor stands for; None for the first page."""
    if not cursor:
        return None
    try:
        if len(cursor) > MAX_CURSOR_LENGTH or not _BASE64URL.fullmatch(cursor):
            raise ValueError("not base64url")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        when, sep, item_id = raw.partition("|")
        at = datetime.fromisoformat(when)
        if not sep or at.tzinfo is None:
            raise ValueError("not a cursor")
        at.astimezone(UTC)  # a year out of range fails here, not in the database
        return at, UUID(hex=item_id)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise errors.ValidationFailed(
            "cursor is not valid; pass next_cursor from the previous page as it is",
            errors=[errors.FieldError("cursor", "not a cursor this API issued")],
        ) from None


def page(rows: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Rows fetched with ``LIMIT limit + 1`` → (this page, next_cursor)."""
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], encode(last["created_at"], last["id"])
    return rows, None
