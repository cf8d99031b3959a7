"""Who may see what: object-level rules shared by the ledger routes."""

from __future__ import annotations

from uuid import UUID

from ledgerline.caller import Principal

READ_ANY_ROLES = frozenset({"admin", "auditor"})


def read_scope(caller: Principal) -> UUID | None:
    """The owner whose objects the caller may read: itself, or anyone's (None) for
    administrators and auditors. Someone else's object is then simply not found."""
    return None if caller.role in READ_ANY_ROLES else caller.id
