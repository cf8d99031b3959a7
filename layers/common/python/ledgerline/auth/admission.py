"""Admission: may this caller run this route, now? Answered by ONE statement.

The authorizer verified the credential's signature (``ledgerline.auth.authorizer``);
admission asks the database the rest, in one function call (``auth_admit``, in
``db/routines/``): is the session or API key still good and the user active, what is their role now,
does that role reach this route (administrators and auditors also need a login proven by
a second factor, ``second_factor``), and is there budget left (rate limits, velocity),
counting this request. What needs no database is checked first, here: the claims' shape
and an API key's scopes.

A money route's admission runs inside its money statement (``ledgerline.idempotency``),
so a transfer is one round trip; other routes are admitted by ``admit``, and their work
follows in a transaction of its own (``Endpoint.read`` / ``Endpoint.write``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledgerline import errors
from ledgerline.auth import apikeys, ratelimits, second_factor
from ledgerline.caller import Principal, Request
from ledgerline.routes import Access, Route

if TYPE_CHECKING:
    from ledgerline.db import Cursor

_ROLES = {Access.ADMIN: ["admin"], Access.AUDITOR: ["admin", "auditor"]}
_FORBIDDEN = {
    Access.ADMIN: "this route is for administrators",
    Access.AUDITOR: "this route is for auditors and administrators",
}
ENROL_FIRST = (
    "administrators and auditors must sign in with two-factor authentication: enrol with "
    "POST /v1/auth/otp/setup and POST /v1/auth/otp/verify if not done yet, then log in again with the code"
)


@dataclass(frozen=True)
class Admission:
    """Everything ``auth_admit`` needs, prepared without the database."""

    claims: dict[str, Any] | None
    policy: dict[str, Any]
    checks: list[dict[str, Any]]
    actor: dict[str, Any]
    claimed: Principal | None  # the caller as the credential says, until the database agrees

    def params(self) -> dict[str, Any]:
        """The named parameters of ``auth_admit`` (and the first four of ``money_call``)."""
        from psycopg2.extras import Json

        from ledgerline import jsonutil

        def as_json(value: Any) -> Any:
            return None if value is None else Json(value, dumps=jsonutil.dumps)

        return {
            "claims": as_json(self.claims),
            "policy": as_json(self.policy),
            "checks": as_json(self.checks),
            "actor": as_json(self.actor),
        }

    def principal(self, role: str | None) -> Principal | None:
        if self.claimed is None or role is None:
            return None
        amr = (self.claims or {}).get("amr")
        return Principal(
            id=self.claimed.id,
            role=role,
            claims=self.claimed.claims,
            enrolment_only=second_factor.enrolment_only(role, amr),
        )


def prepare(route: Route, request: Request, claims: dict[str, Any] | None) -> Admission:
    """The admission of one request, checked as far as it can be without the database."""
    claimed = None
    if not route.public:
        claimed = _claimed(claims)
        if claimed.via_api_key:
            apikeys.check_scope(route, claimed.claims)
    items = request.body.get(route.velocity_items) if route.velocity_items and isinstance(request.body, dict) else None
    checks = ratelimits.request_checks(
        route, request.ip, claimed.id if claimed else None, len(items) if isinstance(items, list) else 1
    )
    return Admission(
        claims=_admitted_claims(claimed.claims) if claimed else None,
        policy=policy(route),
        checks=[c.to_json(route) for c in checks],
        actor={"ip": request.ip, "user_agent": request.user_agent, "metadata": {"request_id": request.request_id}},
        claimed=claimed,
    )


def policy(route: Route) -> dict[str, Any]:
    """The route's rules as ``auth_admit`` applies them."""
    from ledgerline.config import settings

    return {
        "roles": _ROLES.get(route.access),
        "forbidden": _FORBIDDEN.get(route.access),
        "second_factor_roles": [] if route.during_enrolment else sorted(second_factor.PRIVILEGED_ROLES),
        "enrolment": ENROL_FIRST,
        "key_role": apikeys.KEY_ROLE,
        "idle_seconds": settings().session_idle_minutes * 60,
    }


def admit(route: Route, request: Request, claims: dict[str, Any] | None) -> Principal | None:
    """The Endpoint's admission of a non-money route: the caller, or the refusal."""
    from ledgerline.auth import failures
    from ledgerline.db import transaction

    admission = failures.counted(request.ip, lambda: prepare(route, request, claims))

    if admission.claims is None and not admission.checks:
        return None  # a public route nothing limits: nothing to ask

    def call(cur: Cursor) -> dict[str, Any]:
        cur.execute(
            "SELECT auth_admit(p_claims => %(claims)s, p_policy => %(policy)s, p_checks => %(checks)s,"
            " p_actor => %(actor)s) AS a",
            admission.params(),
        )
        return dict(cur.fetchone()["a"])

    result = transaction(call, single_statement=True)
    return admitted(admission, result, request.ip)


def admitted(admission: Admission, result: dict[str, Any], ip: str | None) -> Principal | None:
    """The principal ``auth_admit`` admitted, or its refusal raised (a refused credential
    counts against the IP, ``failures``)."""
    outcome = result["outcome"]
    if outcome == "ok":
        return admission.principal(result.get("role"))
    if outcome == "unauthorized":
        from ledgerline.auth import failures

        raise failures.count(ip, errors.Unauthorized(str(result["detail"])))
    if outcome == "forbidden":
        raise errors.Forbidden(str(result["detail"]))
    if outcome == "rate_limited":
        raise errors.RateLimited(str(result["detail"]), retry_after=int(result["retry_after"]))
    raise RuntimeError(f"auth_admit answered {outcome!r}")


def _claimed(claims: dict[str, Any] | None) -> Principal:
    if not claims:
        raise errors.Unauthorized("send a valid access token: Authorization: Bearer <token>")
    typ = claims.get("typ")
    try:
        sub = UUID(str(claims.get("sub")))
        if typ == "access":
            UUID(str(claims.get("jti")))
            UUID(str(claims.get("sid")))
        elif typ == "api_key":
            UUID(str(claims.get("api_key_id")))
        else:
            raise ValueError(typ)
    except ValueError:
        raise errors.Unauthorized("the access token is not valid; log in again") from None
    # The role is the database's (admission asks it); until then the claim's, for nothing.
    return Principal(id=sub, role=str(claims.get("role") or "user"), claims=dict(claims))


def _admitted_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """What ``auth_admit`` reads of the claims (nothing else travels)."""
    keep = ("typ", "sub", "jti", "sid", "amr", "api_key_id")
    return {k: claims[k] for k in keep if k in claims}
