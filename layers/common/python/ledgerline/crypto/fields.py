"""Envelope encryption of single fields (phone numbers, government ids, bank accounts ...).

Each value is encrypted with AES-256-GCM under a data key; the data key comes from the key
provider (KMS GenerateDataKey in AWS) and travels wrapped inside the envelope, so every
stored value says how to open it and old rows stay readable after any rotation.

Envelope, format version 1 (all integers big-endian)::

    version      1 byte   = 1
    key_created  8 bytes  ms since the epoch when the data key was made (its generation:
                          rotation re-encrypts every envelope older than its cut-off)
    key_id       1 byte length + ASCII (the wrapping key: a KMS key ARN or local:<fp>)
    wrapped_key  2 byte length + bytes (the data key, encrypted by the wrapping key)
    nonce        12 bytes (random, never reused with a data key: a key's uses are bounded)
    ciphertext   the rest: AES-GCM ciphertext and 16-byte tag

Every later format version keeps the first two fields where they are: key rotation
finds envelopes older than its cut-off by those bytes, in SQL.

The associated data is the whole header above plus the table, column and row id, so a
ciphertext copied to another row or column, or any altered byte, fails to decrypt.

Data keys are cached: for encrypting, one current key per process, replaced after a bounded
age and number of uses; for decrypting, unwrapped keys by a digest of their wrapped form.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledgerline.crypto.keys import DataKey, DecryptionError, KeyProvider, default_provider

FORMAT_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
_STAMP = struct.Struct(">BQ")  # version, key_created_ms
_AD_DOMAIN = b"ledgerline.field.v1"


@dataclass(frozen=True)
class CachePolicy:
    """How long and how often one data key may be used.

    ``max_age_seconds`` also bounds how long after a rotation starts a process can still
    write envelopes under a data key from before it (rotation waits that long, then sweeps).
    """

    max_age_seconds: float = 300.0
    # Random 96-bit nonces stay safe far beyond this (NIST SP 800-38D: 2^32 per key).
    max_uses: int = 100_000
    max_decrypt_keys: int = 1_000  # unwrapped data keys kept for reading

    @property
    def enabled(self) -> bool:
        return self.max_age_seconds > 0 and self.max_uses > 1


DEFAULT_POLICY = CachePolicy()
NO_CACHE = CachePolicy(max_age_seconds=0, max_uses=1, max_decrypt_keys=0)


@dataclass(frozen=True)
class Envelope:
    version: int
    key_created_ms: int
    key_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes
    header: bytes  # the bytes before the nonce: authenticated as associated data

    @classmethod
    def parse(cls, blob: bytes | bytearray | memoryview) -> Envelope:
        data = bytes(blob)
        try:
            version, created = _STAMP.unpack_from(data, 0)
            if version != FORMAT_VERSION:
                raise DecryptionError(
                    f"envelope format version {version} is not known to this code (it reads {FORMAT_VERSION})"
                )
            pos = _STAMP.size
            id_len = data[pos]
            key_id = data[pos + 1 : pos + 1 + id_len].decode("ascii")
            pos += 1 + id_len
            (wk_len,) = struct.unpack_from(">H", data, pos)
            wrapped = data[pos + 2 : pos + 2 + wk_len]
            pos += 2 + wk_len
        except (struct.error, IndexError, UnicodeDecodeError):
            raise DecryptionError("not a field envelope: the header is truncated or garbled") from None
        if len(wrapped) != wk_len or len(data) < pos + NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("not a field envelope: it is shorter than its header says")
        return cls(
            version=version,
            key_created_ms=created,
            key_id=key_id,
            wrapped_key=wrapped,
            nonce=data[pos : pos + NONCE_BYTES],
            ciphertext=data[pos + NONCE_BYTES :],
            header=data[:pos],
        )


def build_header(key_created_ms: int, key_id: str, wrapped_key: bytes) -> bytes:
    kid = key_id.encode("ascii")
    if len(kid) > 255 or len(wrapped_key) > 0xFFFF:
        raise ValueError("key id or wrapped key too long for the envelope")
    return (
        _STAMP.pack(FORMAT_VERSION, key_created_ms)
        + bytes([len(kid)])
        + kid
        + struct.pack(">H", len(wrapped_key))
        + wrapped_key
    )


def key_created_ms(blob: bytes | bytearray | memoryview) -> int:
    """The generation stamp of a stored envelope (when its data key was made)."""
    return Envelope.parse(blob).key_created_ms


def associated_data(header: bytes, table: str, column: str, row_id: str) -> bytes:
    # Length-prefixed, so ("ab", "c") and ("a", "bc") can never collide.
    parts = (_AD_DOMAIN, header, table.encode(), column.encode(), row_id.encode())
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def _location(table: str, column: str, row_id: str | UUID | int) -> tuple[str, str, str]:
    rid = str(row_id)
    if not table or not column or not rid:
        raise ValueError("table, column and row_id are required: they bind the ciphertext to its place")
    return table, column, rid


@dataclass
class _CurrentKey:
    key: DataKey
    aead: AESGCM
    created_ms: int
    created_mono: float
    header: bytes
    uses: int = 0


@dataclass
class CipherStats:
    """Counters of key-provider calls (what the caches save)."""

    generated: int = 0
    unwrapped: int = 0
    encrypted: int = 0
    decrypted: int = 0


class FieldCipher:
    """Encrypts and decrypts fields with one key provider and its data-key caches."""

    def __init__(
        self,
        provider: KeyProvider,
        policy: CachePolicy = DEFAULT_POLICY,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.policy = policy
        self._clock = clock
        self._monotonic = monotonic
        # Two locks: making a new data key (under the first) also fills the read cache.
        self._encrypt_lock = threading.Lock()
        self._decrypt_lock = threading.Lock()
        self._current: _CurrentKey | None = None
        self._unwrapped: OrderedDict[bytes, tuple[AESGCM, float]] = OrderedDict()
        self.stats = CipherStats()

    # ------------------------------------------------------------------ encrypt

    def encrypt(self, value: str, *, table: str, column: str, row_id: str | UUID | int) -> bytes:
        if not isinstance(value, str):
            raise TypeError(f"encrypt_field takes text, not {type(value).__name__}")
        table, column, rid = _location(table, column, row_id)
        current = self._key_for_encrypting()
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = current.aead.encrypt(
            nonce, value.encode("utf-8"), associated_data(current.header, table, column, rid)
        )
        self.stats.encrypted += 1
        return current.header + nonce + ciphertext

    def _key_for_encrypting(self) -> _CurrentKey:
        with self._encrypt_lock:
            current = self._current
            if current is None or not self._usable(current):
                current = self._new_key()
                self._current = current if self.policy.enabled else None
            current.uses += 1
            return current

    def _usable(self, current: _CurrentKey) -> bool:
        return (
            current.uses < self.policy.max_uses
            and self._monotonic() - current.created_mono < self.policy.max_age_seconds
        )

    def _new_key(self) -> _CurrentKey:
        key = self.provider.generate_data_key()
        self.stats.generated += 1
        created_ms = int(self._clock() * 1000)
        aead = AESGCM(key.plaintext)
        header = build_header(created_ms, key.key_id, key.wrapped)
        # Reading back what this process just wrote must not cost a KMS call.
        self._remember(key.wrapped, key.key_id, aead)
        return _CurrentKey(key, aead, created_ms, self._monotonic(), header)

    # ------------------------------------------------------------------ decrypt

    def decrypt(
        self, blob: bytes | bytearray | memoryview, *, table: str, column: str, row_id: str | UUID | int
    ) -> str:
        table, column, rid = _location(table, column, row_id)
        env = Envelope.parse(blob)
        aead = self._aead_for(env)
        try:
            plaintext = aead.decrypt(env.nonce, env.ciphertext, associated_data(env.header, table, column, rid))
        except InvalidTag:
            raise DecryptionError(
                f"{table}.{column} of row {rid} does not decrypt: the ciphertext was altered, "
                "or it belongs to another row or column"
            ) from None
        self.stats.decrypted += 1
        return plaintext.decode("utf-8")

    def _aead_for(self, env: Envelope) -> AESGCM:
        digest = hashlib.sha256(env.key_id.encode() + b"\0" + env.wrapped_key).digest()
        now = self._monotonic()
        with self._decrypt_lock:
            hit = self._unwrapped.get(digest)
            if hit is not None and now - hit[1] < self.policy.max_age_seconds:
                self._unwrapped.move_to_end(digest)
                return hit[0]
        plaintext = self.provider.unwrap(env.wrapped_key, env.key_id)
        self.stats.unwrapped += 1
        if len(plaintext) != 32:
            raise DecryptionError(f"the data key under {env.key_id!r} is not an AES-256 key")
        aead = AESGCM(plaintext)
        self._remember(env.wrapped_key, env.key_id, aead)
        return aead

    def _remember(self, wrapped: bytes, key_id: str, aead: AESGCM) -> None:
        if self.policy.max_decrypt_keys <= 0 or self.policy.max_age_seconds <= 0:
            return
        digest = hashlib.sha256(key_id.encode() + b"\0" + wrapped).digest()
        with self._decrypt_lock:
            self._unwrapped[digest] = (aead, self._monotonic())
            self._unwrapped.move_to_end(digest)
            while len(self._unwrapped) > self.policy.max_decrypt_keys:
                self._unwrapped.popitem(last=False)

    # ------------------------------------------------------------------ keys

    def retire_encryption_key(self) -> None:
        """The next encryption uses a new data key (reading keeps its cache)."""
        with self._encrypt_lock:
            self._current = None

    def forget_keys(self) -> None:
        """Drop every cached data key: the next encryption asks the provider for a new one."""
        with self._encrypt_lock:
            self._current = None
        with self._decrypt_lock:
            self._unwrapped.clear()

    def current_key_created_ms(self) -> int | None:
        with self._encrypt_lock:
            return self._current.created_ms if self._current else None


# ---------------------------------------------------------------------- the process default

_default: FieldCipher | None = None
_default_lock = threading.Lock()


def cipher() -> FieldCipher:
    """This process's cipher (KMS in AWS and tests, the local key file locally)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = FieldCipher(default_provider())
    return _default


def configure(provider: KeyProvider | None = None, policy: CachePolicy = DEFAULT_POLICY) -> FieldCipher:
    """Replace the process's cipher (tests inject a provider; None = the default provider)."""
    global _default
    with _default_lock:
        _default = FieldCipher(provider or default_provider(), policy)
        return _default


def reset() -> None:
    """Forget the process's cipher and its keys (the next use builds a new one)."""
    global _default
    with _default_lock:
        _default = None


def encrypt_field(value: str, *, table: str, column: str, row_id: str | UUID | int) -> bytes:
    """Encrypt ``value`` for ``table.column`` of the row ``row_id``; store the bytes (bytea)."""
    return cipher().encrypt(value, table=table, column=column, row_id=row_id)


def decrypt_field(blob: bytes | bytearray | memoryview, *, table: str, column: str, row_id: str | UUID | int) -> str:
    """The plaintext of a stored envelope; DecryptionError if it is not this place's value."""
    return cipher().decrypt(blob, table=table, column=column, row_id=row_id)
