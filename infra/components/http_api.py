"""The HTTP API, generated from ``ledgerline.routes.ROUTES``: one Lambda per route."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import groupby

import jsii
from aws_cdk import Annotations, NestedStack, RemovalPolicy
from aws_cdk import aws_apigateway as apigw_v1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants as c
from infra.components.functions import FunctionPlatform, FunctionSpec, LedgerFunction
from infra.nag import acknowledge
from ledgerline.routes import Route

# The API serves its own OIDC discovery: API Gateway reads ``<issuer>/.well-known/
# openid-configuration`` and, from it, the JWKS URL.
DISCOVERY_PATHS = ("/.well-known/openid-configuration", "/.well-known/jwks.json")

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
        "sub": "$context.authorizer.claims.sub",
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
class _JwtRouteAuthorizer:
    """Attaches the API's one JWT authorizer (created in the API's stack) to a route in
    any route group, instead of letting the first route create it in its own group."""

    def __init__(self, authorizer: apigw.HttpAuthorizer) -> None:
        self._authorizer = authorizer

    def bind(self, *, route: apigw.IHttpRoute, scope: Construct) -> apigw.HttpRouteAuthorizerConfig:
        return apigw.HttpRouteAuthorizerConfig(authorization_type="JWT", authorizer_id=self._authorizer.authorizer_id)


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
        audience: str,
        rate_limit: int,
        burst_limit: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self._names = names
        self.api = self._api()
        self.issuer = issuer or self.api.api_endpoint
        self.audience = audience
        self.authorizer: apigw.HttpAuthorizer | None = None  # created with the first non-public route
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
        self._warn_without_discovery(routes)

    def _api(self) -> apigw.HttpApi:
        api = apigw.HttpApi(
            self,
            "Api",
            api_name=self._names.prefix,
            description="Ledgerline HTTP API (generated from ledgerline.routes.ROUTES)",
            create_default_stage=False,
        )
        # Without this an authorizer that cannot read the issuer's discovery document is
        # dropped with a warning, and the routes behind it silently disappear.
        api.node.default_child.add_property_override("FailOnWarnings", True)  # type: ignore[union-attr]
        return api

    def _jwt(self) -> apigw.IHttpRouteAuthorizer:
        if self.authorizer is None:
            self.authorizer = self._authorizer()
        return _JwtRouteAuthorizer(self.authorizer)

    def _authorizer(self) -> apigw.HttpAuthorizer:
        return apigw.HttpAuthorizer(
            self,
            "JwtAuthorizer",
            http_api=self.api,
            type=apigw.HttpAuthorizerType.JWT,
            authorizer_name="ledgerline-jwt",
            identity_source=["$request.header.Authorization"],
            jwt_issuer=self.issuer,
            jwt_audience=[self.audience],
        )

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
        authorizer = apigw.HttpNoneAuthorizer() if route.public else self._jwt()
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
                f"({route.description}); every other route has the JWT authorizer.",
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

    def _warn_without_discovery(self, routes: Sequence[Route]) -> None:
        served = {r.path for r in routes if r.public and r.method.upper() == "GET"}
        missing = [p for p in DISCOVERY_PATHS if p not in served]
        if missing and any(not r.public for r in routes):
            Annotations.of(self).add_warning_v2(
                "ledgerline:oidc-discovery",
                f"The JWT authorizer reads <issuer>{DISCOVERY_PATHS[0]}, but ROUTES has no public GET "
                f"route for {', '.join(missing)}; set context jwtIssuer to an issuer that serves them.",
            )
