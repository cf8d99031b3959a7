"""Password policy and hashing (argon2id, RFC 9106 low-memory profile).

Policy (NIST SP 800-63B): at least 8 and at most 128 characters, any characters
(normalised to NFKC so the same password typed on two keyboards matches), not one of
the most common passwords, not the email address. No composition rules.
"""

from __future__ import annotations

import gzip
import secrets
import threading
import unicodedata
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

from ledgerline import errors

MIN_LENGTH = 8
MAX_LENGTH = 128

# argon2id, t=3, m=64 MiB, p=4: ~100 ms per hash or check on a 2-core machine, well
# within the 512 MB Lambda's memory.
hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)

_dummy_lock = threading.Lock()
_dummy_hash: list[str] = []


@cache
def common_passwords() -> frozenset[str]:
    data = resources.files(__package__).joinpath("common_passwords.txt.gz").read_bytes()
    lines = gzip.decompress(data).decode().splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def problems(password: str, *, email: str | None = None) -> list[str]:
    """What is wrong with a new password, in words a user can act on ([] = acceptable)."""
    pw = normalise(password)
    if len(pw) < MIN_LENGTH:
        return [f"use at least {MIN_LENGTH} characters"]
    if len(pw) > MAX_LENGTH:
        return [f"use at most {MAX_LENGTH} characters"]
    found = []
    lowered = pw.lower()
    if lowered in common_passwords():
        found.append("this password is one of the most common ones; choose a less predictable one")
    if email and lowered in {email.lower(), email.lower().split("@", 1)[0]}:
        found.append("do not use your email address as the password")
    return found


def check_policy(password: str, *, email: str | None = None, field: str = "password") -> None:
    found = problems(password, email=email)
    if found:
        raise errors.ValidationFailed(
            f"{field}: {found[0]}", errors=[errors.FieldError(field, message) for message in found]
        )


def hash_password(password: str) -> str:
    return hasher.hash(normalise(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing hash costs the same time as a mismatch.

    Callers pass ``None`` for an unknown account, so an attacker cannot tell unknown
    emails from wrong passwords by the response time.
    """
    if password_hash is None:
        password_hash = dummy_hash()
        password = "\x00" + password  # can never match the dummy
    try:
        return hasher.verify(password_hash, normalise(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return hasher.check_needs_rehash(password_hash)


def dummy_hash() -> str:
    with _dummy_lock:
        if not _dummy_hash:
            _dummy_hash.append(hasher.hash(secrets.token_urlsafe(24)))
        return _dummy_hash[0]
