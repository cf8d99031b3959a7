"""Data protection: envelope encryption of fields, blind indexes, masking, key rotation.

Domain modules store sensitive values (phone numbers, government ids, bank account
numbers, TOTP secrets) only as::

    blob = encrypt_field(value, table="users", column="phone_ciphertext", row_id=user_id)
    value = decrypt_field(blob, table="users", column="phone_ciphertext", row_id=user_id)
    index = blind_index(value, kind="phone")      # equality lookups, never the plaintext
    shown = mask(value)                            # "****4567" in responses and logs

and append the column to ``ledgerline.crypto.columns.ENCRYPTED_COLUMNS`` so key rotation
re-encrypts it. ``table`` and ``column`` are the SQL names where the bytes are stored.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledgerline.crypto.blind import blind_index
    from ledgerline.crypto.fields import decrypt_field, encrypt_field
    from ledgerline.crypto.keys import DecryptionError
    from ledgerline.crypto.masking import mask

# Loaded on first use: the logger installs ``masking`` in every Lambda, and only routes
# that touch sensitive fields should pay for loading the cipher library (~20 ms).
_EXPORTS = {
    "DecryptionError": "ledgerline.crypto.keys",
    "blind_index": "ledgerline.crypto.blind",
    "decrypt_field": "ledgerline.crypto.fields",
    "encrypt_field": "ledgerline.crypto.fields",
    "mask": "ledgerline.crypto.masking",
}

__all__ = ["DecryptionError", "blind_index", "decrypt_field", "encrypt_field", "mask"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ledgerline.crypto' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
