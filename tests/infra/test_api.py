"""The HTTP API is generated from the route table: one route and one Lambda per row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra import constants as c
from infra.app import build_app, common_environment
from infra.assets import AssetPaths
from infra.settings import InfraSettings
from tests.infra.conftest import Synthesized
from tests.infra.helpers import (
    as_list,
    from_parent,
    functions_by_name,
    policy_statements,
    ref,
    resolve_output,
    route_targets,
)

API = c.API_STACK
NAMES = c.Names(InfraSettings().resource_prefix)
AUTHORIZER_FUNCTION = NAMES.route_function("authorizer")
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_each_route_of_the_table_has_its_route_and_function_and_nothing_else(synthesized: Synthesized) -> None:
    expected = {f"{r.method} {r.path}": r.lambda_handler for r in synthesized.tables.routes}
    actual = {key: function["Handler"] for key, (_, function) in route_targets(synthesized, API).items()}
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing, f"routes in ROUTES without an API route/function: {missing}"
    assert not extra, f"API routes that are not in ROUTES: {extra}"
    assert actual == expected


def test_exactly_one_function_per_route_plus_the_authorizer(synthesized: Synthesized) -> None:
    routes = synthesized.tables.routes
    assert len(synthesized.resources(API, "AWS::Lambda::Function")) == len(routes) + 1
    functions = functions_by_name(synthesized, API)
    assert sorted(functions) == sorted([*(NAMES.route_function(r.name) for r in routes), AUTHORIZER_FUNCTION])


def _authorizers(app: Synthesized) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in app.resources(API, "AWS::ApiGatewayV2::Authorizer").items()}


def test_every_non_public_route_has_the_lambda_authorizer_and_public_ones_none(synthesized: Synthesized) -> None:
    access = {f"{r.method} {r.path}": r.public for r in synthesized.tables.routes}
    authorizers = _authorizers(synthesized)
    for key, (route, _) in route_targets(synthesized, API).items():
        if access[key]:
            assert route["AuthorizationType"] == "NONE", key
            assert "AuthorizerId" not in route, key
        else:
            assert route["AuthorizationType"] == "CUSTOM", key
            authorizer = ref(from_parent(synthesized, API, route["AuthorizerId"]))
            assert authorizers[authorizer]["AuthorizerType"] == "REQUEST", key


def test_there_is_one_authorizer_and_it_is_not_a_jwt_authorizer(synthesized: Synthesized) -> None:
    # A JWT authorizer reads <issuer>/.well-known/openid-configuration when it is created;
    # the issuer is the API itself, which is what forced a two-phase first deploy.
    ((authorizer),) = _authorizers(synthesized).values()
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert "JwtConfiguration" not in authorizer


def test_the_authorizer_gives_simple_cached_answers_keyed_on_the_authorization_header(synthesized: Synthesized) -> None:
    (authorizer,) = _authorizers(synthesized).values()
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["AuthorizerPayloadFormatVersion"] == "2.0"
    assert authorizer["EnableSimpleResponses"] is True
    # A request without the header is refused with 401 before the function runs.
    assert authorizer["IdentitySource"] == ["$request.header.Authorization"]
    # The Endpoint re-checks exp and the database state on every request, so a cached
    # allow never outlives a token's expiry or a revocation.
    assert authorizer["AuthorizerResultTtlInSeconds"] == 300
    uri = authorizer["AuthorizerUri"]["Fn::Join"][1]
    assert {"Fn::GetAtt": [_authorizer_function_id(synthesized), "Arn"]} in uri
    assert uri[-1] == "/invocations"


def _authorizer_function_id(app: Synthesized) -> str:
    functions = app.resources(API, "AWS::Lambda::Function")
    return next(k for k, v in functions.items() if v["Properties"].get("FunctionName") == AUTHORIZER_FUNCTION)


def _plain_route_function(app: Synthesized) -> dict[str, Any]:
    """A route function without grants: the baseline every function gets (logs, network,
    the database however it is reached)."""
    plain = next(r for r in app.tables.routes if not r.grants and not r.public)
    return functions_by_name(app, API)[NAMES.route_function(plain.name)]


def test_the_authorizer_function_is_built_like_every_other_one(synthesized: Synthesized) -> None:
    function = functions_by_name(synthesized, API)[AUTHORIZER_FUNCTION]
    plain = _plain_route_function(synthesized)
    assert function["Handler"] == "functions.auth.authorizer.handler"
    for key in ("Runtime", "Architectures", "TracingConfig", "Timeout"):
        assert function[key] == plain[key], key
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    assert len(function["Layers"]) == 1
    # The app subnets and the functions' security group: API keys are checked in the database.
    assert function["VpcConfig"] == plain["VpcConfig"]
    variables = function["Environment"]["Variables"]
    assert set(plain["Environment"]["Variables"]) | {c.ENV_JWT_KEY_ID} == set(variables)
    synthesized.template(API).has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": f"/aws/lambda/{AUTHORIZER_FUNCTION}", "RetentionInDays": 90},
    )


def test_the_authorizer_checks_the_apis_own_issuer(real: Synthesized) -> None:
    variables = functions_by_name(real, API)[AUTHORIZER_FUNCTION]["Environment"]["Variables"]
    issuer = variables[c.ENV_JWT_ISSUER]
    assert (ref(issuer) or "").startswith("HttpApi") and issuer["Fn::GetAtt"][1] == "ApiEndpoint"
    assert variables[c.ENV_JWT_AUDIENCE] == InfraSettings().jwt_audience


def test_the_authorizer_may_verify_tokens_and_reach_the_database_and_nothing_more(synthesized: Synthesized) -> None:
    def allowed(function: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in policy_statements(synthesized, API, ref(function["Role"])) if s["Effect"] == "Allow"]

    function = functions_by_name(synthesized, API)[AUTHORIZER_FUNCTION]
    mine, baseline = allowed(function), allowed(_plain_route_function(synthesized))
    actions = {a for s in mine for a in as_list(s["Action"])}
    # Exactly a plain route's permissions (database included) plus reading the JWT key's public half.
    assert actions == {a for s in baseline for a in as_list(s["Action"])} | {"kms:GetPublicKey", "kms:DescribeKey"}
    (verify,) = [s for s in mine if "kms:GetPublicKey" in as_list(s["Action"])]
    assert verify["Resource"] == function["Environment"]["Variables"][c.ENV_JWT_KEY_ID], "the JWT key only"


def test_only_this_apis_authorizer_may_invoke_the_authorizer_function(synthesized: Synthesized) -> None:
    (permission,) = [
        p["Properties"]
        for p in synthesized.resources(API, "AWS::Lambda::Permission").values()
        if ref(p["Properties"]["FunctionName"]) == _authorizer_function_id(synthesized)
    ]
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["Principal"] == "apigateway.amazonaws.com"
    source = json.dumps(permission["SourceArn"])
    assert "/authorizers/" in source and "HttpApi" in source


def test_the_api_claims_no_fail_on_warnings(synthesized: Synthesized) -> None:
    # FailOnWarnings applies to OpenAPI imports (Body); this API has none, so it guarded nothing.
    (api,) = synthesized.resources(API, "AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "HTTP"
    assert "FailOnWarnings" not in api["Properties"]
    assert "FailOnWarnings" not in README, "README must not promise what FailOnWarnings does not do"


def test_there_is_no_two_phase_first_deploy(assets: AssetPaths) -> None:
    assert "apiPublicRoutesOnly" not in README
    assert not hasattr(InfraSettings(), "api_public_routes_only")
    with pytest.raises(ValueError, match=r"apiPublicRoutesOnly.*cdk deploy --all"):
        build_app(context={"apiPublicRoutesOnly": "true"}, assets=assets, checks=False)


def test_access_logs_name_the_caller_from_the_authorizers_context(real: Synthesized) -> None:
    stage = next(iter(real.resources(API, "AWS::ApiGatewayV2::Stage").values()))["Properties"]
    fields = json.loads(stage["AccessLogSettings"]["Format"])
    assert fields["sub"] == "$context.authorizer.sub"
    assert fields["credential"] == "$context.authorizer.typ"
    assert fields["authorizerError"] == "$context.authorizer.error"


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
                                      c.ENV_DB_USER, c.ENV_DB_IAM_AUTH, c.ENV_JWT_ISSUER])  # fmt: skip
def test_every_route_function_gets_the_environment_contract(synthesized: Synthesized, variable: str) -> None:
    for name, function in functions_by_name(synthesized, API).items():
        assert variable in function["Environment"]["Variables"], name


def test_environment_names_the_proxy_the_database_and_the_iam_login(real: Synthesized) -> None:
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
    assert (variables[c.ENV_DB_USER], variables[c.ENV_DB_IAM_AUTH]) == (c.DB_APP_USER, "true")
    # IAM authentication: no database secret reaches a route function.
    assert c.ENV_DB_SECRET_ARN not in variables and c.ENV_DB_OWNER_SECRET_ARN not in variables


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
