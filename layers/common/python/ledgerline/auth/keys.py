"""The JWT signing keys: the private halves stay in KMS, the public halves are the JWKS.

Key rotation
------------
``LEDGERLINE_JWT_KEY_ID`` (or the alias ``alias/<prefix>-jwt``) names the key that signs
new tokens; ``LEDGERLINE_JWT_PREVIOUS_KEY_IDS`` (comma-separated key ids or ARNs) names
retired keys whose tokens must still verify. To rotate: create a new RSA_2048
SIGN_VERIFY key, add the current key's ARN to ``..._PREVIOUS_KEY_IDS``, then point the
alias (or ``LEDGERLINE_JWT_KEY_ID``) at the new key. After the longest access-token
lifetime (15 min) plus clock leeway, drop the old key from the list (and schedule its
deletion). Until then the JWKS publishes both, and tokens signed by either verify.

Every key is known by its ``kid``, the RFC 7638 thumbprint of its public key, so a kid
never depends on which alias pointed where. The signer resolves the alias to a concrete
key (GetPublicKey returns its ARN) and signs with that ARN, so the kid in a token's
header always names the key that signed it, even while the alias moves. Resolutions
are cached in memory for ``RESOLVE_TTL`` seconds; a token with an unknown kid triggers
at most one re-resolution per ``UNKNOWN_KID_REFRESH`` seconds (a key rotated in after
this instance started), never a fetch of a URL named by the token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

RESOLVE_TTL = 300.0
UNKNOWN_KID_REFRESH = 30.0
SIGNING_ALGORITHM = "RSASSA_PKCS1_V1_5_SHA_256"
PREVIOUS_KEYS_ENV = "LEDGERLINE_JWT_PREVIOUS_KEY_IDS"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def public_jwk(public_key: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    jwk = {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
    return {**jwk, "kid": thumbprint(jwk), "alg": "RS256", "use": "sig"}


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, without whitespace."""
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True)
class PublicKey:
    kid: str
    key: rsa.RSAPublicKey
    key_id: str  # the KMS key ARN (or a local label)

    @property
    def jwk(self) -> dict[str, str]:
        return public_jwk(self.key)


class Keyring(Protocol):
    def signing_key(self) -> PublicKey: ...

    def sign(self, key: PublicKey, message: bytes) -> bytes: ...

    def verification_key(self, kid: str) -> PublicKey | None: ...

    def public_keys(self) -> list[PublicKey]: ...


def _load_rsa_public(der: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_der_public_key(der)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the JWT key must be an RSA key")
    return key


def configured_key_ids() -> tuple[str, list[str]]:
    from ledgerline.aws import resources

    previous = [k.strip() for k in os.environ.get(PREVIOUS_KEYS_ENV, "").split(",") if k.strip()]
    return resources.jwt_key_id(), previous


class KmsKeyring:
    """Keys in KMS: Sign for new tokens, GetPublicKey for the JWKS and verification."""

    def __init__(
        self,
        key_ids: Callable[[], tuple[str, list[str]]] = configured_key_ids,
        *,
        client: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key_ids = key_ids
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._resolved: dict[str, tuple[float, PublicKey]] = {}  # configured id → key
        self._last_refresh = -UNKNOWN_KID_REFRESH

    def _kms(self) -> Any:
        if self._client is not None:
            return self._client()
        from ledgerline.aws import clients

        return clients.client("kms")

    def _resolve(self, key_id: str, *, force: bool = False) -> PublicKey:
        now = self._clock()
        with self._lock:
            cached = self._resolved.get(key_id)
        if cached and not force and now - cached[0] < RESOLVE_TTL:
            return cached[1]
        response = self._kms().get_public_key(KeyId=key_id)
        if SIGNING_ALGORITHM not in response.get("SigningAlgorithms", [SIGNING_ALGORITHM]):
            raise ValueError(f"KMS key {key_id} cannot sign with {SIGNING_ALGORITHM}")
        public = _load_rsa_public(response["PublicKey"])
        key = PublicKey(kid=public_jwk(public)["kid"], key=public, key_id=response["KeyId"])
        with self._lock:
            self._resolved[key_id] = (now, key)
        return key

    def signing_key(self) -> PublicKey:
        current, _ = self._key_ids()
        return self._resolve(current)

    def sign(self, key: PublicKey, message: bytes) -> bytes:
        # RAW, not DIGEST: moto's KMS hashes a DIGEST again (real KMS does not), and a
        # token's signing input (~600 bytes) is far below RAW's 4096-byte limit.
        if len(message) > 4096:
            raise ValueError("a token's signing input must stay under KMS's 4096-byte limit")
        response = self._kms().sign(
            KeyId=key.key_id, Message=message, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
        )
        return response["Signature"]

    def _live(self, *, force: bool = False) -> dict[str, PublicKey]:
        """kid → key for every configured key (a key dropped from the list stops verifying)."""
        current, previous = self._key_ids()
        keys: dict[str, PublicKey] = {}
        for key_id in [current, *previous]:
            key = self._resolve(key_id, force=force)
            keys.setdefault(key.kid, key)
        return keys

    def public_keys(self) -> list[PublicKey]:
        return list(self._live().values())

    def verification_key(self, kid: str) -> PublicKey | None:
        key = self._live().get(kid)
        if key is not None:
            return key
        # Perhaps a key rotated in after this instance resolved the alias; look again,
        # but at most once per UNKNOWN_KID_REFRESH so forged kids cannot hammer KMS.
        now = self._clock()
        with self._lock:
            if now - self._last_refresh < UNKNOWN_KID_REFRESH:
                return None
            self._last_refresh = now
        return self._live(force=True).get(kid)


class LocalKeyring:
    """Keys held in memory: unit tests and tools without KMS. Never used in AWS."""

    def __init__(self, private_keys: Iterable[rsa.RSAPrivateKey]) -> None:
        self._private = list(private_keys)
        if not self._private:
            raise ValueError("a keyring needs at least one key")
        self._public = [
            PublicKey(kid=public_jwk(k.public_key())["kid"], key=k.public_key(), key_id=f"local-{i}")
            for i, k in enumerate(self._private)
        ]

    @classmethod
    def generate(cls, count: int = 1) -> LocalKeyring:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(count))

    def signing_key(self) -> PublicKey:
        return self._public[0]

    def sign(self, key: PublicKey, message: bytes) -> bytes:
        private = self._private[self._public.index(key)]
        return private.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def verification_key(self, kid: str) -> PublicKey | None:
        return next((k for k in self._public if k.kid == kid), None)

    def public_keys(self) -> list[PublicKey]:
        return list(self._public)

    def private_key(self, index: int = 0) -> rsa.RSAPrivateKey:
        return self._private[index]


_keyring: list[Keyring] = []
_keyring_lock = threading.Lock()


def keyring() -> Keyring:
    with _keyring_lock:
        if not _keyring:
            _keyring.append(KmsKeyring())
        return _keyring[0]


def use_keyring(ring: Keyring | None) -> Keyring | None:
    """Install ``ring`` (None: back to KMS on next use); return the previous one."""
    with _keyring_lock:
        previous = _keyring[0] if _keyring else None
        _keyring.clear()
        if ring is not None:
            _keyring.append(ring)
        return previous


def jwks() -> dict[str, Any]:
    """The JSON Web Key Set of every key whose tokens verify (current and previous)."""
    return {"keys": [k.jwk for k in keyring().public_keys()]}
