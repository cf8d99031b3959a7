"""The Endpoint without a database: an admission that trusts the authorizer's claims.

The real admission (session, role, second factor, limits in one statement) is tested
on PostgreSQL: tests/integration/test_admission.py and the e2e tier."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledgerline import errors
from ledgerline.caller import Principal, Request
from ledgerline.routes import Route


def trust_claims(route: Route, request: Request, claims: dict[str, Any] | None) -> Principal | None:
    if route.public:
        return None
    if not claims:
        raise errors.Unauthorized("send a valid access token: Authorization: Bearer <token>")
    return Principal(id=UUID(str(claims["sub"])), role=str(claims.get("role", "user")), claims=claims)
