"""Blind indexes: a keyed HMAC-SHA256 of a normalised value, stored beside its ciphertext.

They answer exactly one question — "which row holds this value?" — by equality, without
the plaintext ever being stored. Without the key (Secrets Manager) an index value cannot
be checked against guesses, which a plain hash of a phone number would allow in seconds.

Each kind has its own sub-key, so the same digits as a phone number and as a bank account
give unrelated indexes and columns cannot be joined on them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import unicodedata
from collections.abc import Callable

INDEX_BYTES = 32
MIN_KEY_BYTES = 32


def _email(value: str) -> str:
    text = value.strip().lower()
    if "@" not in text or any(ch.isspace() for ch in text):
        raise ValueError("not an email address")
    return text


def _phone(value: str) -> str:
    text = re.sub(r"[\s\-().\u00a0]", "", value)
    international = text.startswith("+") or text.startswith("00")
    digits = text[1:] if text.startswith("+") else text[2:] if text.startswith("00") else text
    if not digits.isdigit() or not 4 <= len(digits) <= 15:
        raise ValueError("a phone number is 4 to 15 digits, optionally starting with + or 00")
    return ("+" if international else "") + digits


def _account(value: str) -> str:
    # Digits for NUBAN/ABA-style numbers; IBANs keep their letters, upper-cased.
    text = re.sub(r"[\s\-.]", "", value).upper()
    if not text.isascii() or not text.isalnum():
        raise ValueError("an account number has only digits and letters (spaces and dashes are ignored)")
    return text


def _government_id(value: str) -> str:
    text = re.sub(r"[\s\-./]", "", value).upper()
    if not text.isascii() or not text.isalnum():
        raise ValueError("a government id has only digits and letters (spaces and dashes are ignored)")
    return text


NORMALISERS: dict[str, Callable[[str], str]] = {
    "email": _email,
    "phone": _phone,
    "bank_account": _account,
    "government_id": _government_id,
}


def normalise(value: str, kind: str) -> str:
    """The canonical form that two spellings of the same value share."""
    try:
        fn = NORMALISERS[kind]
    except KeyError:
        raise ValueError(f"unknown blind-index kind {kind!r}; one of {', '.join(sorted(NORMALISERS))}") from None
    if not isinstance(value, str):
        raise TypeError(f"blind_index takes text, not {type(value).__name__}")
    try:
        return fn(unicodedata.normalize("NFKC", value))
    except ValueError as exc:
        raise ValueError(f"cannot index this {kind}: {exc}") from None


class BlindIndexer:
    """HMAC-SHA256 under per-kind sub-keys of one master key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the blind-index key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        self._subkeys = {
            kind: hmac.new(key, b"ledgerline blind index v1\0" + kind.encode(), hashlib.sha256).digest()
            for kind in NORMALISERS
        }

    def index(self, value: str, *, kind: str) -> bytes:
        canonical = normalise(value, kind)
        return hmac.new(self._subkeys[kind], canonical.encode("utf-8"), hashlib.sha256).digest()


def secret_key() -> bytes:
    """The blind-index key from Secrets Manager (hex), via the one secrets accessor."""
    from ledgerline.aws import resources, secrets

    secret_id = resources.blind_index_secret_id()
    text = secrets.get_string(secret_id).strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise secrets.SecretError(f"secret {secret_id} must hold the blind-index key as hex") from None


_lock = threading.Lock()
_indexer: tuple[bytes, BlindIndexer] | None = None
_key_source: Callable[[], bytes] = secret_key


def configure(key_source: Callable[[], bytes] | None = None) -> None:
    """Use another key source (tests pass ``lambda: key``); None restores Secrets Manager."""
    global _indexer, _key_source
    with _lock:
        _key_source = key_source or secret_key
        _indexer = None


def _current() -> BlindIndexer:
    global _indexer
    key = _key_source()  # the secrets accessor caches the read
    with _lock:
        if _indexer is None or not hmac.compare_digest(_indexer[0], key):
            _indexer = (key, BlindIndexer(key))
        return _indexer[1]


def server_key(purpose: str) -> bytes:
    """A 32-byte key for ``purpose`` derived from the same master key (Secrets Manager, never
    the database): one per purpose, unrelated to each other and to the index sub-keys."""
    return hmac.new(_key_source(), b"ledgerline server key v1\0" + purpose.encode(), hashlib.sha256).digest()


def blind_index(value: str, *, kind: str) -> bytes:
    """The 32-byte index of ``value`` (normalised per ``kind``) for equality lookups."""
    return _current().index(value, kind=kind)
