"""The HTTP API, generated from ``ledgerline.routes.ROUTES``: one Lambda per route, and
one Lambda authorizer in front of every non-public route."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import groupby

import jsii
from aws_cdk import Duration, NestedStack, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw_v1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants as c
from infra.components.functions import FunctionPlatform, FunctionSpec, LedgerFunction
from infra.nag import acknowledge
from ledgerline.routes import Route

# The Lambda REQUEST authorizer (functions/auth/authorizer.py). It verifies tokens with
# the JWT key's public half and API keys in the database, so it reads no discovery
# document: the API, its routes and the authorizer are created in one deploy.
AUTHORIZER_NAME = "authorizer"  # function ledgerline-api-authorizer
AUTHORIZER_HANDLER = "functions.auth.authorizer.handler"
AUTHORIZER_GRANTS = ("kms:jwt-verify",)
AUTHORIZER_IDENTITY_SOURCE = "$request.header.Authorization"
# One answer per Authorization header value, for every route. Safe to cache because the
# Endpoint re-checks exp and the database state (revocation, suspension, role) per request.
AUTHORIZER_CACHE_TTL = Duration.minutes(5)

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
        "authorizerError": "$context.authorizer.error",
        # The Lambda authorizer's context: the caller, and "access" (token) or "api_key".
        "sub": "$context.authorizer.sub",
        "credential": "$context.authorizer.typ",
    }
)


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogSettings:
    """``IAccessLogSettings`` is an interface, not a struct, in the Python bindings."""

    def __init__(self, destination: apigw.IAccessLogDestination, log_format: apigw_v1.AccessLogFormat) -> None:
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw_v1.AccessLogFormat:
        return self._format


@jsii.implements(apigw.IHttpRouteAuthorizer)
class _SharedRouteAuthorizer:
    """Attaches the API's one Lambda authorizer (created in the API's stack) to a route in
    any route group. ``HttpLambdaAuthorizer`` would create the authorizer and its invoke
    permission inside the first route that binds it, i.e. in one area's nested stack."""

    def __init__(self, authorizer: apigw.HttpAuthorizer) -> None:
        self._authorizer = authorizer

    def bind(self, *, route: apigw.IHttpRoute, scope: Construct) -> apigw.HttpRouteAuthorizerConfig:
        return apigw.HttpRouteAuthorizerConfig(
            authorization_type="CUSTOM", authorizer_id=self._authorizer.authorizer_id
        )


class RouteGroup(NestedStack):
    """The routes of one area (``functions.<area>``) and their functions. Each route costs
    about seven resources; grouping by area keeps every template far from
    CloudFormation's 500-resource limit, and a route never moves between groups."""


def area_of(route: Route) -> str:
    """``functions.auth.login`` → ``auth``."""
    return route.handler.split(".")[1]


class RoutedHttpApi(Construct):
    """An HTTP API whose routes, functions and authorization all come from the route table.

    Call ``add_routes`` once the functions' platform (which needs ``issuer``) is ready."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: c.Names,
        issuer: str | None,
        rate_limit: int,
        burst_limit: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self._names = names
        self.api = self._api()
        # Tokens' ``iss``: the API's own URL unless configured; the authorizer compares
        # it with LEDGERLINE_JWT_ISSUER and reads nothing from it.
        self.issuer = issuer or self.api.api_endpoint
        self.authorizer: apigw.HttpAuthorizer | None = None  # created by add_routes
        self.authorizer_function: LedgerFunction | None = None
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=c.LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = self._stage(rate_limit, burst_limit)
        self.groups: dict[str, RouteGroup] = {}
        self.functions: dict[Route, LedgerFunction] = {}
        self.routes: dict[Route, apigw.HttpRoute] = {}

    def add_routes(
        self,
        routes: Sequence[Route],
        platform: FunctionPlatform,
        *,
        money_concurrency: int,
        money_rate_limit: int,
        money_burst_limit: int,
    ) -> None:
        self.authorizer_function, self.authorizer = self._lambda_authorizer(platform)
        for area, rows in groupby(sorted(routes, key=area_of), key=area_of):
            group = RouteGroup(self, f"{c.pascal(area)}Routes", description=f"Ledgerline API routes: {area}")
            self.groups[area] = group
            for route in rows:
                function = self._function(group, route, platform, money_concurrency)
                self.functions[route] = function
                self.routes[route] = self._route(group, route, function)
            # Route settings name routes, so the stage follows every group.
            self.stage.node.add_dependency(group)
        self._money_throttling([r for r in routes if r.money], money_rate_limit, money_burst_limit)

    def _api(self) -> apigw.HttpApi:
        # No FailOnWarnings: it applies to OpenAPI imports (Body), which this API has none of.
        return apigw.HttpApi(
            self,
            "Api",
            api_name=self._names.prefix,
            description="Ledgerline HTTP API (generated from ledgerline.routes.ROUTES)",
            create_default_stage=False,
        )

    def _lambda_authorizer(self, platform: FunctionPlatform) -> tuple[LedgerFunction, apigw.HttpAuthorizer]:
        """The authorizer function (built and granted like a route's: its own role, the
        database through the proxy, ``kms:jwt-verify``) and the API's REQUEST authorizer
        on it, with simple responses (payload 2.0)."""
        function = LedgerFunction(
            self,
            "Authorizer",
            spec=FunctionSpec(
                function_name=self._names.route_function(AUTHORIZER_NAME),
                handler=AUTHORIZER_HANDLER,
                description="Lambda authorizer of every non-public route: access tokens and API keys",
                timeout=c.API_TIMEOUT,
                grants=AUTHORIZER_GRANTS,
            ),
            platform=platform,
        )
        stack = Stack.of(self)
        invocations = f"arn:{stack.partition}:apigateway:{stack.region}:lambda:path/2015-03-31/functions/"
        authorizer = apigw.HttpAuthorizer(
            self,
            "LambdaAuthorizer",
            http_api=self.api,
            type=apigw.HttpAuthorizerType.LAMBDA,
            authorizer_name=f"{self._names.prefix}-authorizer",
            authorizer_uri=f"{invocations}{function.function.function_arn}/invocations",
            identity_source=[AUTHORIZER_IDENTITY_SOURCE],
            enable_simple_responses=True,
            payload_format_version=apigw.AuthorizerPayloadVersion.VERSION_2_0,
            results_cache_ttl=AUTHORIZER_CACHE_TTL,
        )
        # API Gateway may invoke it only as this API's authorizer.
        function.function.add_permission(
            "InvokedByApiAuthorizer",
            principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
            source_arn=stack.format_arn(
                service="execute-api",
                resource=self.api.api_id,
                resource_name=f"authorizers/{authorizer.authorizer_id}",
            ),
        )
        return function, authorizer

    def _stage(self, rate_limit: int, burst_limit: int) -> apigw.HttpStage:
        return apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
            detailed_metrics_enabled=True,
            access_log_settings=_AccessLogSettings(
                apigw.LogGroupLogDestination(self.access_logs), apigw_v1.AccessLogFormat.custom(ACCESS_LOG_FORMAT)
            ),
        )

    def _function(
        self, group: RouteGroup, route: Route, platform: FunctionPlatform, money_concurrency: int
    ) -> LedgerFunction:
        return LedgerFunction(
            group,
            route.name,
            spec=FunctionSpec(
                function_name=self._names.route_function(route.name),
                handler=route.lambda_handler,
                description=f"{route.method} {route.path}: {route.description}",
                timeout=c.API_TIMEOUT,
                grants=route.grants,
                # Money routes hold a row lock and a proxy connection per invocation.
                reserved_concurrency=money_concurrency if route.money else None,
            ),
            platform=platform,
        )

    def _route(self, group: RouteGroup, route: Route, function: LedgerFunction) -> apigw.HttpRoute:
        integration = integrations.HttpLambdaIntegration(f"{route.name}Integration", function.function)
        authorizer: apigw.IHttpRouteAuthorizer = apigw.HttpNoneAuthorizer()
        if not route.public:
            assert self.authorizer is not None, "add_routes creates the authorizer first"
            authorizer = _SharedRouteAuthorizer(self.authorizer)
        http_route = apigw.HttpRoute(
            group,
            f"{route.name}Route",
            http_api=self.api,
            route_key=apigw.HttpRouteKey.with_(route.path, apigw.HttpMethod(route.method.upper())),
            integration=integration,
            authorizer=authorizer,
        )
        if route.public:
            acknowledge(
                http_route,
                "AwsSolutions-APIG4",
                f"{route.method} {route.path} is PUBLIC in ledgerline.routes.ROUTES "
                f"({route.description}); every other route has the Lambda authorizer.",
            )
        return http_route

    def _money_throttling(self, routes: Sequence[Route], rate_limit: int, burst_limit: int) -> None:
        if not routes:
            return
        settings = {
            f"{r.method.upper()} {r.path}": {"ThrottlingRateLimit": rate_limit, "ThrottlingBurstLimit": burst_limit}
            for r in routes
        }
        self.stage.node.default_child.add_property_override("RouteSettings", settings)  # type: ignore[union-attr]
