"""One route, one Lambda: the glue between an API Gateway event and one domain call.

A handler module reads::

    api = Endpoint(__name__)          # method, path and access come from the route table

    @api
    def create_account(body: CreateAccount) -> Response:
        ...

    handler = api.handler

The Endpoint owns everything every route shares: the input gate (``http/gate.py``:
media type, UTF-8, size, depth, NUL), authentication, role checks, request validation
(powertools + pydantic), Decimal JSON, and the mapping of every error to one
``application/problem+json`` shape. A 500 never leaks internals.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from ledgerline import errors, jsonutil, routes
from ledgerline.audit import Actor
from ledgerline.http import gate
from ledgerline.observability import logger, metrics

PROBLEM_JSON = "application/problem+json"


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


@dataclass(frozen=True)
class Request:
    """What a route may know about its caller, independent of the event format."""

    request_id: str
    ip: str | None
    user_agent: str | None
    headers: dict[str, str]
    principal: Principal | None
    body: Any = None  # the JSON body as the input gate parsed it (Decimal fractions)

    @property
    def actor(self) -> Actor:
        p = self.principal
        kind = "anonymous"
        if p is not None:
            # A merchant's server calling with an API key is audited as such, not as
            # the merchant in person.
            kind = "api_key" if p.claims.get("typ") == "api_key" else p.role
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


# The default authenticator is identity's database check (ledgerline.auth.principal):
# the authorizer (ledgerline.auth.authorizer) has verified the credential, the database
# says whether it still stands (revoked jti, session or key, suspended user) and which
# role the user has now. ``claims_principal`` trusts the claims alone (unit tests of the edge).
Authenticator = Callable[[dict[str, Any]], Principal]


def claims_principal(claims: dict[str, Any]) -> Principal:
    try:
        return Principal(id=UUID(str(claims["sub"])), role=str(claims.get("role", "user")), claims=claims)
    except (KeyError, ValueError):
        raise errors.Unauthorized("the access token has no valid subject") from None


def database_principal(claims: dict[str, Any]) -> Principal:
    from ledgerline.auth.principal import authenticate  # deferred: cold start of public routes

    return authenticate(claims)


_authenticator: list[Authenticator] = [database_principal]

# ``ledgerline.auth.tokens.LEEWAY_SECONDS`` (not imported here: that loads pyjwt).
EXPIRY_LEEWAY_SECONDS = 5


def authorizer_claims(ctx: dict[str, Any]) -> dict[str, Any] | None:
    """The claims the authorizer verified: the Lambda authorizer's context in AWS
    (``requestContext.authorizer.lambda``), or the JWT-authorizer shape the local
    gateway builds (``requestContext.authorizer.jwt.claims``).

    API Gateway caches an allow for minutes per Authorization header, which can outlive
    an access token: a token past its ``exp`` is refused here, as the verifier would.
    API keys (``typ`` api_key) do not expire; revocation of either is checked in the
    database by the authenticator."""
    authorizer = ctx.get("authorizer") or {}
    claims = authorizer.get("lambda") or (authorizer.get("jwt") or {}).get("claims")
    if isinstance(claims, dict) and claims.get("typ") == "access":
        try:
            expires = float(claims["exp"])
        except (KeyError, TypeError, ValueError):
            expires = math.nan
        if not math.isfinite(expires):
            raise errors.Unauthorized("the access token is not valid; log in again")
        if expires <= time.time() - EXPIRY_LEEWAY_SECONDS:
            raise errors.Unauthorized("the access token has expired; refresh it")
    return claims


def _authenticate(claims: dict[str, Any] | None, ip: str | None) -> Principal:
    """The caller, or 401; failures are counted per IP, and an IP over its budget gets
    429 before anything is checked (``ledgerline.auth.failures``)."""
    from ledgerline.auth import failures  # deferred like the authenticator

    if not claims:
        raise errors.Unauthorized("send a valid access token: Authorization: Bearer <token>")
    return failures.counted(ip, lambda: _authenticator[0](claims))


# Guards run after authentication and before the route (rate limits, velocity checks);
# they raise a DomainError to refuse the request.
Guard = Callable[[routes.Route, "Request"], None]


def rate_limit_guard(route: routes.Route, request: Request) -> None:
    from ledgerline.auth.limits import guard  # deferred like the authenticator

    guard(route, request)


_guards: list[Guard] = [rate_limit_guard]


def set_authenticator(fn: Authenticator) -> None:
    _authenticator[0] = fn


def add_guard(fn: Guard) -> None:
    if fn not in _guards:
        _guards.append(fn)


def problem_body(err: errors.DomainError) -> str:
    return jsonutil.dumps(err.problem())


def problem_response(err: errors.DomainError) -> Response:
    return Response(
        status_code=err.status, content_type=PROBLEM_JSON, body=problem_body(err), headers=dict(err.headers)
    )


def problem_result(err: errors.DomainError) -> dict[str, Any]:
    """The same problem as a raw Lambda proxy result (for checks before routing)."""
    return {
        "statusCode": err.status,
        "headers": {"Content-Type": PROBLEM_JSON, **err.headers},
        "body": problem_body(err),
        "isBase64Encoded": False,
    }


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type="application/json", body=jsonutil.dumps(body), headers=headers)


def _validation_problem(exc: RequestValidationError) -> errors.DomainError:
    field_errors = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "header")]
        if e.get("type") == "json_invalid":
            return errors.BadRequest("the request body is not valid JSON")
        message = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            message = "unknown field; remove it"
        elif e.get("type") == "missing":
            message = "this field is required"
        field_errors.append(errors.FieldError(".".join(loc) or "body", message))
    summary = "; ".join(f"{fe.field}: {fe.message}" for fe in field_errors[:3])
    return errors.ValidationFailed(f"the request is not valid: {summary}", errors=field_errors)


def powertools_rule(path: str) -> str:
    return path.replace("{", "<").replace("}", ">")


class Endpoint:
    def __init__(self, module: str) -> None:
        self.route = routes.by_handler(module)
        self._fn: Callable[..., Any] | None = None
        self._local = threading.local()

    # -- registration -------------------------------------------------------------
    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._fn = fn
        return fn

    def register(self, app: APIGatewayHttpResolver) -> None:
        if self._fn is None:
            raise LookupError(f"{self.route.handler}: no function decorated with @api")
        r = self.route
        app.route(
            rule=powertools_rule(r.path),
            method=r.method,
            summary=r.description,
            tags=list(r.tags) or [r.handler.split(".")[1]],
            operation_id=r.name,
            security=None if r.public else [{"bearerAuth": []}],
        )(self._fn)

    def _resolver(self) -> APIGatewayHttpResolver:
        # Powertools keeps the current event on the resolver; the local gateway runs
        # handlers on many threads, so each thread gets its own resolver. The body was
        # parsed by the input gate: powertools takes that parse instead of its own.
        app = getattr(self._local, "app", None)
        if app is None:
            app = build_resolver(json_body=lambda _text: self.request.body)
            self.register(app)
            self._local.app = app
        return app

    # -- per request ----------------------------------------------------------------
    @property
    def request(self) -> Request:
        return self._local.request

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        ctx = event.get("requestContext") or {}
        request_id = ctx.get("requestId") or "-"
        # Thread-local keys: the local gateway, workers and scheduler share one process.
        logger.thread_safe_append_keys(correlation_id=request_id, route=f"{self.route.method} {self.route.path}")
        try:
            self._local.request = self._prepare(event, ctx, request_id)
        except errors.DomainError as err:
            self._log_problem(err)
            return problem_result(err)
        try:
            result = self._resolver().resolve(event, context)
        finally:
            self._local.request = None
            if metrics.metric_set:
                metrics.flush_metrics()
        return result

    def _prepare(self, event: dict[str, Any], ctx: dict[str, Any], request_id: str) -> Request:
        body = gate.check(event)
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        http = ctx.get("http") or {}
        ip = http.get("sourceIp")
        principal = None
        if not self.route.public:
            claims = authorizer_claims(ctx)
            principal = _authenticate(claims, ip)
            self._authorize(principal)
        request = Request(
            request_id=request_id,
            ip=ip,
            user_agent=http.get("userAgent"),
            headers=headers,
            principal=principal,
            body=body,
        )
        for guard in _guards:
            guard(self.route, request)
        return request

    def _authorize(self, principal: Principal) -> None:
        access = self.route.access
        if access is routes.Access.ADMIN and principal.role != "admin":
            raise errors.Forbidden("this route is for administrators")
        if access is routes.Access.AUDITOR and principal.role not in ("admin", "auditor"):
            raise errors.Forbidden("this route is for auditors and administrators")

    def _log_problem(self, err: errors.DomainError) -> None:
        logger.info("request refused", extra={"status": err.status, "code": err.code})

    # -- money-moving routes (issue 5) ------------------------------------------------
    def money(
        self,
        work: Callable[[Any], Any],
        *,
        status: int = 201,
        on_failure: Callable[[Any, errors.DomainError | None], None] | None = None,
    ) -> Response:
        """Run ``work(cursor)`` exactly once per caller and Idempotency-Key.

        The key is claimed, ``work`` runs and its response (or its deterministic 4xx) is
        stored in one database transaction (``ledgerline.idempotency``); a retry with the
        same key and request gets the stored response with ``Idempotent-Replayed: true``.
        ``on_failure(cursor, error)`` records a refusal (in the transaction that stores it,
        after the operation's writes were rolled back) or, with ``error=None``, a crash (in a transaction
        of its own, after the rollback).
        """
        from ledgerline import idempotency  # deferred: only money routes load it

        if not self.route.money:
            raise RuntimeError(f"{self.route.handler}: Endpoint.money is for routes marked money=True")
        request = self.request
        key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
        principal = request.require_principal()
        event = self._resolver().current_event
        request_hash = idempotency.fingerprint(
            event.http_method, event.raw_path, request.body, event.raw_query_string or ""
        )
        actor = request.actor

        try:
            outcome = idempotency.execute(
                scope=str(principal.id),
                key=key,
                request_hash=request_hash,
                work=lambda c: (status, work(c)),
                actor=actor,
                on_failure=on_failure,
            )
        except errors.DomainError:
            raise
        except Exception:
            if on_failure is not None:
                self._record_crash(on_failure)
            raise
        headers = {idempotency.REPLAYED_HEADER: "true"} if outcome.replayed else None
        return Response(
            status_code=outcome.status, content_type=outcome.content_type, body=outcome.body, headers=headers
        )

    def _record_crash(self, on_failure: Callable[[Any, errors.DomainError | None], None]) -> None:
        from ledgerline.db import transaction

        try:
            transaction(lambda cur: on_failure(cur, None), attempts=2)
        except Exception:
            logger.exception("could not record the failed operation")


def build_resolver(json_body: Callable[[str], Any] | None = None) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(
        enable_validation=True,
        serializer=jsonutil.dumps,
        json_body_deserializer=json_body or partial(jsonutil.loads),
    )

    @app.exception_handler(errors.DomainError)
    def _domain(err: errors.DomainError) -> Response:
        logger.info("request refused", extra={"status": err.status, "code": err.code})
        return problem_response(err)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return problem_response(_validation_problem(exc))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return problem_response(errors.InternalError("something went wrong on our side; it has been logged"))

    @app.not_found
    def _not_found(exc: Exception) -> Response:
        return problem_response(errors.NotFound("no such route"))

    return app
