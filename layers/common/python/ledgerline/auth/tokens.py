"""RS256 access tokens: issued with a KMS-held key, verified against the JWKS.

Verification is strict by construction: the algorithm must be RS256 (``none``, HS256
with the public key as an HMAC secret and every other algorithm are refused before any
key is chosen); the key is chosen only by ``kid`` among our own keys (``jku``, ``x5u``,
``jwk`` and ``x5c`` headers are never followed); ``typ`` must be ``at+jwt`` in the
header (RFC 9068) and ``access`` in the claims; iss, aud, exp, nbf, iat, sub and jti are
required and checked.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import jwt

from ledgerline import errors
from ledgerline.auth import keys, second_factor
from ledgerline.config import settings

ACCESS_TOKEN_TTL = 15 * 60
LEEWAY_SECONDS = 5  # clock skew between function instances
ALGORITHM = "RS256"
HEADER_TYP = "at+jwt"
CLAIM_TYP = "access"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "nbf", "exp", "jti", "typ")

# Scopes narrower than full access: a privileged role's login without a second factor
# reaches only the enrolment routes (``second_factor``).
SCOPE_OTP_ENROLMENT = second_factor.SCOPE_OTP_ENROLMENT


def _segment(value: dict[str, Any]) -> str:
    return keys.b64url(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def issue_access_token(
    user_id: UUID | str,
    role: str,
    *,
    session_id: UUID | str | None = None,
    amr: Iterable[str] = ("pwd",),
    scope: str | None = None,
    now: float | None = None,
    ttl: int = ACCESS_TOKEN_TTL,
    jti: str | None = None,
) -> tuple[str, int]:
    """Sign a new access token; return it and its lifetime in seconds. ``now`` and ``jti``
    given, the same claims sign to the same token (RS256 is deterministic): a refresh
    retried within its grace answers the pair it answered first (``sessions.refresh``)."""
    cfg = settings()
    ring = keys.keyring()
    key = ring.signing_key()
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": cfg.jwt_issuer,
        "aud": cfg.jwt_audience,
        "sub": str(user_id),
        "role": role,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": jti or str(uuid.uuid4()),
        "typ": CLAIM_TYP,
        "amr": list(amr),
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    if scope is not None:
        claims["scope"] = scope
    header = {"alg": ALGORITHM, "typ": HEADER_TYP, "kid": key.kid}
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = ring.sign(key, signing_input.encode())
    return f"{signing_input}.{keys.b64url(signature)}", ttl


def _refuse(detail: str = "the access token is not valid; log in again") -> errors.DomainError:
    return errors.Unauthorized(detail)


def verify_access_token(token: str, *, now: float | None = None) -> dict[str, Any]:
    """The claims of a valid access token; ``Unauthorized`` for anything wrong with it."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
        raise _refuse()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _refuse() from None
    if header.get("alg") != ALGORITHM:
        raise _refuse("the access token's algorithm is not accepted")
    if header.get("typ") != HEADER_TYP:
        raise _refuse("the token is not an access token")
    if "crit" in header:  # no extension is understood, so none may be critical
        raise _refuse()
    kid = header.get("kid")
    key = keys.keyring().verification_key(kid) if isinstance(kid, str) and kid else None
    if key is None:
        raise _refuse("the access token was not signed by a current key; log in again")
    cfg = settings()
    options: Any = {"require": list(REQUIRED_CLAIMS)}
    if now is not None:
        # pyjwt reads the clock itself; a fixed ``now`` is for tests of expiry edges.
        options["verify_exp"] = options["verify_nbf"] = options["verify_iat"] = False
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[ALGORITHM],
            audience=cfg.jwt_audience,
            issuer=cfg.jwt_issuer,
            leeway=LEEWAY_SECONDS,
            options=options,
        )
    except jwt.ExpiredSignatureError:
        raise _refuse("the access token has expired; refresh it") from None
    except jwt.ImmatureSignatureError:
        raise _refuse("the access token is not valid yet") from None
    except jwt.PyJWTError:
        raise _refuse() from None
    if now is not None:
        _check_times(claims, now)
    if claims.get("typ") != CLAIM_TYP:
        raise _refuse("the token is not an access token")
    if not all(isinstance(claims[c], int) for c in ("iat", "nbf", "exp")):
        raise _refuse()
    if claims["exp"] - claims["iat"] > ACCESS_TOKEN_TTL:
        raise _refuse()  # we never issue longer-lived tokens
    try:
        UUID(str(claims["sub"]))
        UUID(str(claims["jti"]))
        if "sid" in claims:
            UUID(str(claims["sid"]))
    except ValueError:
        raise _refuse() from None
    return claims


def _check_times(claims: dict[str, Any], now: float) -> None:
    if claims["exp"] <= now - LEEWAY_SECONDS:
        raise _refuse("the access token has expired; refresh it")
    if claims["nbf"] > now + LEEWAY_SECONDS or claims["iat"] > now + LEEWAY_SECONDS:
        raise _refuse("the access token is not valid yet")


def jwks() -> dict[str, Any]:
    return keys.jwks()
