"""One route, one Lambda: the glue between an API Gateway event and one domain call.

A handler module reads::

    api = Endpoint(__name__)          # method, path and policy come from the route table

    @api
    def create_account(body: CreateAccount) -> Response:
        account = api.write(lambda cur: ledger.open_account(cur, ...))
        ...

    handler = api.handler

The Endpoint owns everything every route shares: the input gate (``http/gate.py``:
media type, UTF-8, size, depth, NUL), admission (who calls, may they, is there budget
left: ``ledgerline.auth.admission``, one statement), request validation (powertools +
pydantic), Decimal JSON, and the mapping of every error to one ``application/problem+json``
shape. A 500 never leaks internals.

A unit of work is opened one way: ``api.read`` and ``api.write`` give the route's work a
transaction (they refuse a money route); ``api.money`` is the only way a money route runs
(one statement: admission, idempotency claim, operation, audit row, stored response).
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, ParamSpec, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from ledgerline import errors, jsonutil, routes
from ledgerline.auth import origin
from ledgerline.caller import Principal, Request
from ledgerline.http import gate
from ledgerline.observability import logger, metrics

T = TypeVar("T")
P = ParamSpec("P")

# Admission of a non-money route: the caller (None on a public route), or a DomainError.
# ``ledgerline.auth.admission.admit`` unless a test hands the Endpoint another.
Admit = Callable[[routes.Route, Request, dict[str, Any] | None], Principal | None]

# ``ledgerline.auth.tokens.LEEWAY_SECONDS`` (not imported here: that loads pyjwt).
EXPIRY_LEEWAY_SECONDS = 5


def database_admission(route: routes.Route, request: Request, claims: dict[str, Any] | None) -> Principal | None:
    from ledgerline.auth.admission import admit  # deferred: the cold start of public routes

    return admit(route, request, claims)


def authorizer_claims(ctx: dict[str, Any]) -> dict[str, Any] | None:
    """The claims the authorizer verified: the Lambda authorizer's context in AWS
    (``requestContext.authorizer.lambda``), or the JWT-authorizer shape the local
    gateway builds (``requestContext.authorizer.jwt.claims``).

    API Gateway caches an allow for minutes per Authorization header, which can outlive
    an access token: a token past its ``exp`` is refused here, as the verifier would.
    API keys (``typ`` api_key) do not expire; revocation of either is checked in the
    database by admission."""
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


def log_refusal(err: errors.DomainError) -> None:
    logger.info("request refused", extra={"status": err.status, "code": err.code})


def problem_body(err: errors.DomainError) -> str:
    return jsonutil.dumps(err.problem())


def problem_response(err: errors.DomainError) -> Response:
    return Response(
        status_code=err.status, content_type=errors.PROBLEM_JSON, body=problem_body(err), headers=dict(err.headers)
    )


def problem_result(err: errors.DomainError) -> dict[str, Any]:
    """The same problem as a raw Lambda proxy result (for checks before routing)."""
    return {
        "statusCode": err.status,
        "headers": {"Content-Type": errors.PROBLEM_JSON, **err.headers},
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
    def __init__(self, module: str, *, admit: Admit = database_admission) -> None:
        self.route = routes.by_handler(module)
        self._admit = admit
        self._fn: Callable[..., Response] | None = None
        self._local = threading.local()

    # -- registration -------------------------------------------------------------
    def __call__(self, fn: Callable[P, Response]) -> Callable[P, Response]:
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
        )(_without_return_type(self._fn))

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
            log_refusal(err)
            return problem_result(err)
        try:
            result = self._resolver().resolve(event, context)
        finally:
            self._local.request = None
            self._local.admission = None
            if metrics.metric_set:
                metrics.flush_metrics()
        return result

    def _prepare(self, event: dict[str, Any], ctx: dict[str, Any], request_id: str) -> Request:
        body = gate.check(event, max_body_bytes=self.route.max_body or gate.MAX_BODY_BYTES)
        http = ctx.get("http") or {}
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        request = Request(
            request_id=request_id,
            # The client, not a proxy we run: what audit rows, sessions and per-IP limits name.
            ip=origin.client_ip(http.get("sourceIp"), headers),
            user_agent=http.get("userAgent"),
            headers=headers,
            principal=None,
            body=body,
            via_cloudfront=origin.via_cloudfront(http.get("sourceIp")),
        )
        claims = None if self.route.public else authorizer_claims(ctx)
        if self.route.money:
            # Admitted inside the money statement (api.money); until then, the caller the
            # credential names, checked as far as it can be without the database.
            from ledgerline.auth import admission, failures

            prepared = failures.counted(request.ip, lambda: admission.prepare(self.route, request, claims))
            self._local.admission = prepared
            principal = prepared.claimed
        else:
            principal = self._admit(self.route, request, claims)
        return Request(request.request_id, request.ip, request.user_agent, request.headers, principal, body)

    # -- units of work --------------------------------------------------------------
    def read(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` in a read-only transaction."""
        self._not_money("read")
        from ledgerline.db import transaction

        return transaction(work, read_only=True)

    def write(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` in a transaction (retried whole on transient failures)."""
        self._not_money("write")
        from ledgerline.db import transaction

        return transaction(work)

    def _not_money(self, unit: str) -> None:
        if self.route.money:
            raise RuntimeError(f"{self.route.handler}: a money route runs only through api.money, not api.{unit}")

    def money(self, operation: str, args: dict[str, Any]) -> Response:
        """Run the money ``operation`` (``ledgerline.ledger.operations``) exactly once per
        caller and Idempotency-Key, in one statement (``ledgerline.idempotency.call``).

        ``args`` are the operation's arguments as the request gave them (amounts as text:
        the database parses them, so a bad amount is a stored, replayed refusal). A retry
        with the same key and request gets the stored response, ``Idempotent-Replayed: true``.
        """
        from ledgerline import idempotency  # deferred: only money routes load it
        from ledgerline.ledger import operations

        if not self.route.money:
            raise RuntimeError(f"{self.route.handler}: api.money is for routes marked money=True")
        request = self.request
        op = operations.by_name(operation)
        key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
        caller = request.require_principal()
        event = self._resolver().current_event
        request_hash = idempotency.fingerprint(
            event.http_method, event.raw_path, request.body, event.raw_query_string or ""
        )
        full_args = op.arguments(args, owner=caller.id if self.route.access is routes.Access.USER else None)
        try:
            outcome = idempotency.call(
                self._local.admission, key=key, request_hash=request_hash, operation=op.name, args=full_args
            )
        except errors.DomainError:
            raise
        except Exception:
            op.record_crash(request.actor, full_args)
            raise
        if op.publishes and not outcome.replayed and outcome.status < 300:
            _publish_fresh()
        headers = {idempotency.REPLAYED_HEADER: "true"} if outcome.replayed else None
        return Response(
            status_code=outcome.status, content_type=outcome.content_type, body=outcome.body, headers=headers
        )


def _publish_fresh() -> None:
    """Send the outbox rows a money statement just wrote (best effort: what this misses,
    the relay's sweep sends within a minute)."""
    from ledgerline import outbox

    try:
        outbox.publish_fresh()
    except Exception:
        logger.warning("outbox rows left to the relay's sweep", exc_info=True)


def build_resolver(json_body: Callable[[str], Any] | None = None) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(
        enable_validation=True,
        serializer=jsonutil.dumps,
        json_body_deserializer=json_body or partial(jsonutil.loads),
    )

    @app.exception_handler(errors.DomainError)
    def _domain(err: errors.DomainError) -> Response:
        log_refusal(err)
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


def _without_return_type(fn: Callable[P, Response]) -> Callable[P, Response]:
    """The handler as powertools should see it. Handlers declare ``-> Response`` for the
    type checker; powertools would read that as a response model to validate the body
    against, and a built Response is not one."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> Response:
        return fn(*args, **kwargs)

    signature = inspect.signature(fn, eval_str=True)
    call.__signature__ = signature.replace(return_annotation=inspect.Signature.empty)  # type: ignore[attr-defined]
    return call
