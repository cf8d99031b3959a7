"""Opaque list cursors: the sort key of the last item, base64url-encoded."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from ledgerline import errors

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode(created_at: datetime, item_id: UUID) -> str:
    raw = f"{created_at.isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[datetime, UUID] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, item_id = raw.partition("|")
        at = datetime.fromisoformat(when)
        if at.tzinfo is None:
            raise ValueError("naive time")
        return at, UUID(item_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise errors.ValidationFailed(
            "cursor is not valid", errors=[errors.FieldError("cursor", "pass next_cursor from the previous page as is")]
        ) from None


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.ValidationFailed(
            f"limit must be between 1 and {MAX_LIMIT}",
            errors=[errors.FieldError("limit", f"use 1..{MAX_LIMIT} (default {DEFAULT_LIMIT})")],
        )
    return limit
