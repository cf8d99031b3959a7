"""Who is calling and from where: the facts every layer may know about a request.

A leaf module (it imports nothing of the HTTP edge), so identity code and the Endpoint
both use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from ledgerline import errors
from ledgerline.audit import Actor


@dataclass(frozen=True)
class Principal:
    id: UUID
    role: str
    claims: dict[str, Any] = field(default_factory=dict)
    # The role needs a second factor this login did not prove: only the enrolment routes.
    enrolment_only: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def via_api_key(self) -> bool:
        return self.claims.get("typ") == "api_key"


@dataclass(frozen=True)
class Request:
    """What a route may know about its caller, independent of the event format."""

    request_id: str
    ip: str | None
    user_agent: str | None
    headers: dict[str, str]
    principal: Principal | None
    body: Any = None  # the JSON body as the input gate parsed it (Decimal fractions)
    # It came through CloudFront, configured in front, via a trusted proxy: its viewer
    # headers (country, city) may be believed (ledgerline.auth.origin.via_cloudfront).
    via_cloudfront: bool = False

    @property
    def actor(self) -> Actor:
        p = self.principal
        kind = "anonymous"
        if p is not None:
            # A merchant's server calling with an API key is audited as such, not as
            # the merchant in person.
            kind = "api_key" if p.via_api_key else p.role
        return Actor(
            id=p.id if p else None,
            type=kind,
            ip=self.ip,
            user_agent=self.user_agent,
            request_id=self.request_id,
        )

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise errors.Unauthorized("send a valid access token: Authorization: Bearer <token>")
        return self.principal
