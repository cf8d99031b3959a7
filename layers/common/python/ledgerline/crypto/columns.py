"""Every column that holds field envelopes: what key rotation re-encrypts.

A module that stores ``encrypt_field`` output appends its column to ``ENCRYPTED_COLUMNS``
below (a static list, so the rotation CLI knows every column without importing every
domain module). The ``table`` and ``column`` given to ``encrypt_field`` must be exactly
the SQL table and column named here: they are the ciphertext's associated data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENT = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class EncryptedColumn:
    table: str
    column: str
    id_column: str = "id"  # the row id given to encrypt_field (its text form)
    # A constant SQL condition for rows whose column holds an envelope (e.g. a flag), when
    # not every non-NULL value does.
    where: str | None = None

    def __post_init__(self) -> None:
        for name in (self.table, self.column, self.id_column):
            if not _IDENT.fullmatch(name):
                raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")


# Owners append here, one line per column.
ENCRYPTED_COLUMNS: list[EncryptedColumn] = [
    EncryptedColumn("users", "phone_ciphertext"),  # ledgerline.auth.users
    EncryptedColumn("otp_credentials", "secret", id_column="user_id", where="secret_encrypted"),  # auth.otp
    EncryptedColumn("withdrawals", "account_number_ciphertext"),  # payments.withdrawals
    EncryptedColumn("webhook_endpoints", "secret_ciphertext"),  # webhooks.endpoints
    EncryptedColumn("payout_accounts", "account_number_ciphertext"),  # payments.payout_accounts
]


def register(table: str, column: str, id_column: str = "id", where: str | None = None) -> EncryptedColumn:
    """Add a column at run time (idempotent); the static list above is preferred."""
    entry = EncryptedColumn(table, column, id_column, where)
    for existing in ENCRYPTED_COLUMNS:
        if (existing.table, existing.column) == (table, column):
            if existing != entry:
                raise ValueError(f"{table}.{column} is already registered as {existing}")
            return existing
    ENCRYPTED_COLUMNS.append(entry)
    return entry
