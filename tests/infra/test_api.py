"""The HTTP API is generated from the route table: one route and one Lambda per row."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from infra import constants as c
from infra.app import common_environment
from infra.settings import InfraSettings
from tests.infra.conftest import Synthesized
from tests.infra.helpers import from_parent, functions_by_name, ref, resolve_output, route_targets

API = c.API_STACK
NAMES = c.Names(InfraSettings().resource_prefix)


def test_each_route_of_the_table_has_its_route_and_function_and_nothing_else(synthesized: Synthesized) -> None:
    expected = {f"{r.method} {r.path}": r.lambda_handler for r in synthesized.tables.routes}
    actual = {key: function["Handler"] for key, (_, function) in route_targets(synthesized, API).items()}
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing, f"routes in ROUTES without an API route/function: {missing}"
    assert not extra, f"API routes that are not in ROUTES: {extra}"
    assert actual == expected


def test_exactly_one_function_per_route(synthesized: Synthesized) -> None:
    routes = synthesized.tables.routes
    assert len(synthesized.resources(API, "AWS::Lambda::Function")) == len(routes)
    functions = functions_by_name(synthesized, API)
    assert sorted(functions) == sorted(NAMES.route_function(r.name) for r in routes)


def test_every_non_public_route_has_the_jwt_authorizer_and_public_ones_none(synthesized: Synthesized) -> None:
    access = {f"{r.method} {r.path}": r.public for r in synthesized.tables.routes}
    authorizers = synthesized.resources(API, "AWS::ApiGatewayV2::Authorizer")
    for key, (route, _) in route_targets(synthesized, API).items():
        if access[key]:
            assert route["AuthorizationType"] == "NONE", key
            assert "AuthorizerId" not in route, key
        else:
            assert route["AuthorizationType"] == "JWT", key
            authorizer = ref(from_parent(synthesized, API, route["AuthorizerId"]))
            assert authorizers[authorizer]["Properties"]["AuthorizerType"] == "JWT", key


def test_jwt_authorizer_checks_issuer_and_audience_from_the_bearer_header(probe: Synthesized) -> None:
    probe.template(API).has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "AuthorizerType": "JWT",
            "IdentitySource": ["$request.header.Authorization"],
            "JwtConfiguration": {
                # Issuer: the API itself, which serves /.well-known/openid-configuration and jwks.json.
                "Issuer": {"Fn::GetAtt": [Match.string_like_regexp("^HttpApi"), "ApiEndpoint"]},
                "Audience": [InfraSettings().jwt_audience],
            },
        },
    )


def test_api_fails_deployment_instead_of_dropping_an_unusable_authorizer(synthesized: Synthesized) -> None:
    synthesized.template(API).has_resource_properties(
        "AWS::ApiGatewayV2::Api", {"ProtocolType": "HTTP", "FailOnWarnings": True}
    )


def test_stage_is_throttled_and_writes_json_access_logs(synthesized: Synthesized) -> None:
    settings = InfraSettings()
    synthesized.template(API).has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AutoDeploy": True,
            "DefaultRouteSettings": Match.object_like(
                {"ThrottlingRateLimit": settings.api_rate_limit, "ThrottlingBurstLimit": settings.api_burst_limit}
            ),
            "AccessLogSettings": {
                "DestinationArn": {"Fn::GetAtt": [Match.any_value(), "Arn"]},
                "Format": Match.string_like_regexp(r"\$context\.requestId"),
            },
        },
    )


def test_money_routes_get_reserved_concurrency_and_their_own_throttle(probe: Synthesized) -> None:
    settings = InfraSettings()
    functions = functions_by_name(probe, API)
    money = [r for r in probe.tables.routes if r.money]
    assert money, "the probe table has a money route"
    for route in probe.tables.routes:
        reserved = functions[NAMES.route_function(route.name)].get("ReservedConcurrentExecutions")
        assert reserved == (settings.money_reserved_concurrency if route.money else None), route.path
    stage = next(iter(probe.resources(API, "AWS::ApiGatewayV2::Stage").values()))["Properties"]
    assert stage["RouteSettings"] == {
        f"{r.method} {r.path}": {
            "ThrottlingRateLimit": settings.money_rate_limit,
            "ThrottlingBurstLimit": settings.money_burst_limit,
        }
        for r in money
    }


def test_route_functions_are_python_312_on_arm64_in_the_vpc_with_the_layer(synthesized: Synthesized) -> None:
    for name, function in functions_by_name(synthesized, API).items():
        assert function["Runtime"] == "python3.12", name
        assert function["Architectures"] == ["arm64"], name
        assert function["Timeout"] == c.API_TIMEOUT.to_seconds() < 30, name
        assert function["TracingConfig"] == {"Mode": "Active"}, name
        assert len(function["Layers"]) == 1, name
        assert len(function["VpcConfig"]["SubnetIds"]) == 2, name


@pytest.mark.parametrize("variable", [*common_environment(InfraSettings()), c.ENV_DB_HOST, c.ENV_DB_NAME,
                                      c.ENV_DB_SECRET_ARN, c.ENV_JWT_ISSUER])  # fmt: skip
def test_every_route_function_gets_the_environment_contract(synthesized: Synthesized, variable: str) -> None:
    for name, function in functions_by_name(synthesized, API).items():
        assert variable in function["Environment"]["Variables"], name


def test_environment_names_the_proxy_the_database_and_the_application_secret(real: Synthesized) -> None:
    variables = next(iter(functions_by_name(real, API).values()))["Environment"]["Variables"]
    assert variables[c.ENV_ENVIRONMENT] == "aws"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "ledgerline"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Ledgerline"
    assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert variables[c.ENV_DB_NAME] == c.DB_NAME
    stack, host = resolve_output(real, variables[c.ENV_DB_HOST], consumer=API)
    assert stack == c.DATA_STACK
    assert real.raw(stack)["Resources"][ref(host)]["Type"] == "AWS::RDS::DBProxy"
    assert host["Fn::GetAtt"][1] == "Endpoint"
    stack, secret = resolve_output(real, variables[c.ENV_DB_SECRET_ARN], consumer=API)
    attachment = real.raw(stack)["Resources"][ref(secret)]
    assert attachment["Type"] == "AWS::SecretsManager::SecretTargetAttachment"
    app_secret = real.raw(stack)["Resources"][ref(attachment["Properties"]["SecretId"])]["Properties"]
    assert f'"username":"{c.DB_APP_USER}"' in app_secret["GenerateSecretString"]["SecretStringTemplate"]
    assert c.ENV_DB_OWNER_SECRET_ARN not in variables, "only the migration may hold the owner secret"


def test_function_code_asset_is_the_functions_package_only(assets) -> None:  # type: ignore[no-untyped-def]
    staged = assets.functions
    assert sorted(p.name for p in staged.iterdir()) == ["functions"]
    files = [p for p in staged.rglob("*") if p.is_file()]
    assert files, "the functions package was staged"
    assert not [p for p in files if "__pycache__" in p.parts or p.suffix == ".pyc" or "tests" in p.parts]


def test_route_groups_share_one_common_layer_for_python_312_arm64(synthesized: Synthesized) -> None:
    ((layer_id, layer),) = synthesized.resources(API, "AWS::Lambda::LayerVersion").items()
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    for name, function in functions_by_name(synthesized, API).items():
        (used,) = function["Layers"]
        assert from_parent(synthesized, API, used) == {"Ref": layer_id}, name
