"""The one authorizer decision: which bearer credentials get through to a route.

API Gateway's Lambda authorizer in AWS (``functions.auth.authorizer``) and the local
gateway (``ledgerline.local.gateway``) both call ``authorize_bearer``, so a credential
is accepted or refused the same way on a laptop and in AWS:

* ``Authorization: Bearer llk_...``: a merchant API key, checked against its stored
  hash in the database (``apikeys.authorize``);
* ``Authorization: Bearer <jwt>``: an RS256 access token, checked against our own keys
  (``tokens.verify_access_token``: alg, typ, kid, signature, iss, aud, exp, nbf);
* anything else: refused.

A refusal counts against the caller's IP (``failures``). What this decision does not
know, the Endpoint checks on every request (``ledgerline.auth.principal``): a revoked
session or jti, a revoked key, a suspended user, the role the user has now, and, since
API Gateway may cache an answer for longer than a token has left, the token's ``exp``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledgerline import errors

BEARER_HINT = "send a valid access token: Authorization: Bearer <token>"
API_KEY_PREFIX = "llk_"  # ledgerline.auth.apikeys.KEY_PREFIX, without importing it for every token

Verifier = Callable[[str], dict[str, Any]]


def verify_credential(credential: str) -> dict[str, Any]:
    """The claims of a valid API key or access token; ``Unauthorized`` otherwise.
    Modules are imported on first use: a token never loads the API-key code."""
    if credential.startswith(API_KEY_PREFIX):
        from ledgerline.auth.apikeys import authorize

        return authorize(credential)
    from ledgerline.auth.tokens import verify_access_token

    return verify_access_token(credential)


def bearer_credential(authorization: str | None) -> str:
    """The credential of an ``Authorization: Bearer <credential>`` header value."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise errors.Unauthorized(BEARER_HINT)
    return credential


def authorize_bearer(
    authorization: str | None, ip: str | None, *, verify: Verifier = verify_credential
) -> dict[str, Any]:
    """The verified claims behind an ``Authorization`` header, or a ``DomainError``:
    401 for a missing, malformed or refused credential, 429 for an IP over its budget of
    failures. A malformed header is not counted (no credential was guessed)."""
    from ledgerline.auth import failures  # deferred: its imports reach the database layer

    credential = bearer_credential(authorization)
    return failures.counted(ip, lambda: verify(credential))
