"""Does a verified credential still stand? The admission statement's first half.

A signature only proves a token was issued, not that it still stands: the user exists
and is active, the token's jti and session were not revoked (logout, revoke-all,
password reset, a role change, refresh-token reuse), an API key was not revoked and its
owner is still a merchant. ``auth_admit`` (``ledgerline.auth.admission``) answers that,
and the role the user has now; ``authenticate`` asks it alone, for callers outside a
route (the CLI, tests), with no route's rules and nothing counted.
"""

from __future__ import annotations

from typing import Any

from ledgerline.auth import admission
from ledgerline.caller import Principal, Request
from ledgerline.routes import Access, RateLimit, Route

_ANY_CALLER = Route("GET", "/", "ledgerline.auth.principal", Access.USER, "any authenticated caller",
                    limit=RateLimit.NONE, during_enrolment=True)  # fmt: skip


def authenticate(claims: dict[str, Any]) -> Principal:
    """The principal of ``claims``, or ``Unauthorized`` when the credential no longer stands."""
    request = Request(request_id="-", ip=None, user_agent=None, headers={}, principal=None)
    principal = admission.admit(_ANY_CALLER, request, claims)
    assert principal is not None  # a route that is not public always admits someone or raises
    return principal
