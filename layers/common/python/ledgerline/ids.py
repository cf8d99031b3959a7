"""Object ids from the outside world."""

from __future__ import annotations

from uuid import UUID

from ledgerline import errors


def object_id(value: UUID | str, what: str) -> UUID:
    """The UUID a path or body names. Text that is not a UUID names no object: the caller
    gets the same 404 as for a missing object or someone else's, never a 400 that would
    tell the two apart."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise errors.NotFound(f"{what} {value} not found") from None
