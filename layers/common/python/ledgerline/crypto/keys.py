"""Key providers: where the data keys that encrypt fields come from and how they are wrapped.

A provider makes fresh 256-bit data keys and unwraps the wrapped (encrypted) copies kept in
each envelope. The plaintext data key only ever lives in memory; the database holds only
the wrapped copy, which is useless without the wrapping key.

- ``KmsKeyProvider``: AWS KMS (and moto in tests). The wrapping key never leaves KMS.
- ``WrappingKeyProvider``: a 256-bit master key held in memory that wraps data keys with
  AES-256-GCM. Tests inject one; ``LocalKeyProvider`` is one whose master key lives in a
  file under the data directory, because moto's KMS keys are new on every start and
  anything encrypted under a previous start's key would be lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DATA_KEY_BYTES = 32  # AES-256
LOCAL_KEY_PREFIX = "local:"
# Binds a wrapped data key to its purpose (KMS encryption context / local associated data).
KMS_ENCRYPTION_CONTEXT = {"ledgerline": "field-data-key"}
_LOCAL_WRAP_AD = b"ledgerline field data key v1"


class DecryptionError(Exception):
    """A field could not be decrypted: tampered, moved to another row or column, or the
    key it was encrypted under is not available here. Never carries plaintext."""


@dataclass(frozen=True)
class DataKey:
    """A fresh data key: the plaintext (memory only) and its wrapped form (stored)."""

    plaintext: bytes = field(repr=False)
    wrapped: bytes
    key_id: str  # the wrapping key that can unwrap ``wrapped``


class KeyProvider(Protocol):
    """Makes and unwraps data keys; ``key_id`` names the wrapping key for new keys."""

    @property
    def key_id(self) -> str: ...

    def generate_data_key(self) -> DataKey: ...

    def unwrap(self, wrapped: bytes, key_id: str) -> bytes:
        """Return the plaintext data key; raise DecryptionError when it cannot be unwrapped."""
        ...


class WrappingKeyProvider:
    """Data keys wrapped with AES-256-GCM under a master key held in this process."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != DATA_KEY_BYTES:
            raise ValueError(f"the master key must be {DATA_KEY_BYTES} bytes, got {len(master_key)}")
        self._aead = AESGCM(master_key)
        # A fingerprint, not the key: tells which master key wrapped an envelope's data key.
        self._key_id = LOCAL_KEY_PREFIX + hashlib.sha256(b"ledgerline key id" + master_key).hexdigest()[:16]

    @classmethod
    def random(cls) -> WrappingKeyProvider:
        return cls(secrets.token_bytes(DATA_KEY_BYTES))

    @property
    def key_id(self) -> str:
        return self._key_id

    def generate_data_key(self) -> DataKey:
        plaintext = secrets.token_bytes(DATA_KEY_BYTES)
        nonce = secrets.token_bytes(12)
        wrapped = nonce + self._aead.encrypt(nonce, plaintext, _LOCAL_WRAP_AD + self._key_id.encode())
        return DataKey(plaintext=plaintext, wrapped=wrapped, key_id=self._key_id)

    def unwrap(self, wrapped: bytes, key_id: str) -> bytes:
        if key_id != self._key_id:
            raise DecryptionError(
                f"the data key was wrapped by key {key_id!r}; this process holds {self._key_id!r} "
                "(encrypted in another environment, or the local key file was replaced)"
            )
        try:
            return self._aead.decrypt(wrapped[:12], wrapped[12:], _LOCAL_WRAP_AD + key_id.encode())
        except (InvalidTag, ValueError):
            raise DecryptionError(f"the wrapped data key does not open under {key_id!r}: it was altered") from None


class LocalKeyProvider(WrappingKeyProvider):
    """The local stack's provider: the master key is a file (mode 600) in the data directory.

    Created on first use; deleting it makes every locally encrypted field unreadable, as
    losing a KMS key would in AWS.
    """

    FILE_NAME = "field-master.key"

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(_load_or_create_key(path))


def _load_or_create_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole to a private temporary file, then linked into place: link fails if
        # another process got there first, and no reader ever sees a half-written key.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(DATA_KEY_BYTES).hex().encode())
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink()
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        key = b""
    if len(key) != DATA_KEY_BYTES:
        raise RuntimeError(
            f"{path} does not hold a {DATA_KEY_BYTES}-byte hex key; restore it from a backup "
            "(moving it away makes every locally encrypted field unreadable)"
        )
    return key


class KmsKeyProvider:
    """Data keys from KMS GenerateDataKey (AES_256); unwrapped by KMS Decrypt."""

    # KMS answers these when the ciphertext or the key is wrong, not when it is unreachable.
    _REFUSALS = frozenset(
        {
            "InvalidCiphertextException",
            "IncorrectKeyException",
            "NotFoundException",
            "DisabledException",
            "KMSInvalidStateException",
            "AccessDeniedException",
            "InvalidKeyUsageException",
        }
    )

    def __init__(self, key_id: str | None = None, client: Any = None) -> None:
        from ledgerline.aws import resources

        self._key_id = key_id or resources.field_key_id()
        self._client = client

    def _kms(self) -> Any:
        if self._client is not None:
            return self._client
        from ledgerline.aws import clients

        return clients.client("kms")

    @property
    def key_id(self) -> str:
        return self._key_id

    def generate_data_key(self) -> DataKey:
        out = self._kms().generate_data_key(
            KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=KMS_ENCRYPTION_CONTEXT
        )
        # KMS answers with the key's ARN even when asked by alias: the envelope records the
        # ARN, so a later change of the alias does not strand old rows.
        return DataKey(plaintext=out["Plaintext"], wrapped=out["CiphertextBlob"], key_id=out["KeyId"])

    def unwrap(self, wrapped: bytes, key_id: str) -> bytes:
        if key_id.startswith(LOCAL_KEY_PREFIX):
            raise DecryptionError(
                f"the data key was wrapped by the local stack's key {key_id!r}, which KMS does not hold"
            )
        try:
            out = self._kms().decrypt(CiphertextBlob=wrapped, KeyId=key_id, EncryptionContext=KMS_ENCRYPTION_CONTEXT)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in self._REFUSALS:
                raise DecryptionError(f"KMS refused to unwrap the data key under {key_id!r} ({code})") from None
            raise
        return bytes(out["Plaintext"])


def default_provider() -> KeyProvider:
    """KMS in AWS and in tests; the file-backed local key in the local stack."""
    from ledgerline.config import settings

    cfg = settings()
    if cfg.environment == "local":
        return LocalKeyProvider(cfg.data_dir / "keys" / LocalKeyProvider.FILE_NAME)
    return KmsKeyProvider()
