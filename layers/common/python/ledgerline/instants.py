"""Instants from requests: RFC 3339 text with a zone, in a range PostgreSQL and Python share.

A query value is untrusted text: a naive time, a date alone, or an instant whose UTC
form falls outside years 1..9999 (``0001-01-01T00:00:00+14:00``) is a 422, never a 500.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ledgerline import errors

MAX_LENGTH = 40
# An unescaped "+" in a query string arrives as a space: "...T12:00:00 01:00".
_SPACED_OFFSET = re.compile(r"(?<=\d) (?=\d{2}:\d{2}$)")


def parse(text: str, field: str) -> datetime:
    """The instant ``text`` names, in UTC."""

    def refuse(message: str) -> errors.ValidationFailed:
        return errors.ValidationFailed(f"{field}: {message}", errors=[errors.FieldError(field, message)])

    if len(text) > MAX_LENGTH or "T" not in text.upper():
        raise refuse("use an RFC 3339 instant such as 2024-05-01T12:00:00Z")
    try:
        at = datetime.fromisoformat(_SPACED_OFFSET.sub("+", text))
    except ValueError:
        raise refuse("use an RFC 3339 instant such as 2024-05-01T12:00:00Z") from None
    if at.tzinfo is None:
        raise refuse("give the time zone: Z or an offset such as +01:00")
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise refuse("the instant is out of range (years 1 to 9999 in UTC)") from None
