"""Least privilege: one role per function, precise actions on precise resources."""

from __future__ import annotations

from typing import Any

import pytest

from infra import constants as c
from infra.app import Tables, build_app
from infra.components.bastion import SESSION_MANAGER_ACTIONS
from infra.settings import InfraSettings
from ledgerline.jobs import QUEUES, SCHEDULES
from ledgerline.routes import GRANTS, Access, Route
from tests.infra.conftest import PROBE_CONTEXT, Synthesized
from tests.infra.helpers import as_list, functions_by_name, policy_statements, ref, statements

NAMES = c.Names(InfraSettings().resource_prefix)
POLICY_DOCUMENTS = {
    "AWS::IAM::Policy": ["PolicyDocument"],
    "AWS::IAM::ManagedPolicy": ["PolicyDocument"],
    "AWS::S3::BucketPolicy": ["PolicyDocument"],
    "AWS::SQS::QueuePolicy": ["PolicyDocument"],
    "AWS::SNS::TopicPolicy": ["PolicyDocument"],
    "AWS::SecretsManager::ResourcePolicy": ["ResourcePolicy"],
    "AWS::KMS::Key": ["KeyPolicy"],
}
# Lambda attaches functions to the VPC and uploads traces with these; IAM cannot scope them.
LAMBDA_RESOURCE_STAR = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
RESOURCE_STAR_ALLOWED = LAMBDA_RESOURCE_STAR | set(SESSION_MANAGER_ACTIONS)  # fmt: skip
# What each grant must give (at least), and the variable that tells the code where.
GRANT_ACTIONS = {
    "kms:jwt-sign": ({"kms:Sign", "kms:GetPublicKey"}, c.ENV_JWT_KEY_ID),
    "kms:jwt-verify": ({"kms:GetPublicKey"}, c.ENV_JWT_KEY_ID),
    "kms:field": ({"kms:GenerateDataKey", "kms:Decrypt"}, c.ENV_FIELD_KEY_ID),
    "kms:audit-checkpoint": ({"kms:Sign", "kms:Verify", "kms:GetPublicKey"}, c.ENV_AUDIT_KEY_ID),
    "s3:audit-write": ({"s3:PutObject"}, c.ENV_AUDIT_BUCKET),
    "s3:audit-read": ({"s3:GetObject", "s3:ListBucket"}, c.ENV_AUDIT_BUCKET),
    "s3:evidence-write": ({"s3:PutObject"}, c.ENV_EVIDENCE_BUCKET),
    "s3:evidence-read": ({"s3:GetObject", "s3:ListBucket"}, c.ENV_EVIDENCE_BUCKET),
    "secret:gateways": ({"secretsmanager:GetSecretValue"}, c.ENV_GATEWAY_SECRET_ARN),
    "secret:blind-index": ({"secretsmanager:GetSecretValue"}, c.ENV_BLIND_INDEX_SECRET_ARN),
    "ses:send": ({"ses:SendEmail"}, c.ENV_EMAIL_FROM),  # the probe app sets context emailFrom
}


def _expectation(grant: str) -> tuple[set[str], str]:
    if grant.startswith("sqs:"):
        return {"sqs:SendMessage"}, c.queue_url_env(grant.removeprefix("sqs:"))
    return GRANT_ACTIONS[grant]


def _policy_documents(app: Synthesized) -> list[tuple[str, str, dict[str, Any]]]:
    """(where, resource type, document) for every policy document of every stack."""
    found = []
    for stack, logical_id, resource in app.all_resources():
        for key in POLICY_DOCUMENTS.get(resource["Type"], []):
            found.append((f"{stack}/{logical_id}", resource["Type"], resource["Properties"][key]))
        if resource["Type"] == "AWS::IAM::Role":
            for inline in resource["Properties"].get("Policies", []):
                found.append((f"{stack}/{logical_id}", resource["Type"], inline["PolicyDocument"]))
    return found


def _delegates_to_iam(resource_type: str, statement: dict[str, Any]) -> bool:
    """A key-policy statement for this account's root: it hands the decision to IAM
    policies (checked by the other tests), it grants no identity anything by itself."""
    principal = statement.get("Principal", {}).get("AWS")
    return resource_type == "AWS::KMS::Key" and principal == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]
    }


def test_no_policy_allows_a_wildcard_action(synthesized: Synthesized) -> None:
    offenders = []
    documents = _policy_documents(synthesized)
    assert len(documents) > 20
    for where, resource_type, document in documents:
        for statement in statements(document):
            if statement["Effect"] != "Allow" or _delegates_to_iam(resource_type, statement):
                continue
            wild = [a for a in as_list(statement["Action"]) if "*" in a]
            if wild:
                offenders.append(f"{where}: {wild}")
    assert not offenders, "wildcard actions: " + "; ".join(offenders)


def test_identity_policies_use_resource_star_only_for_network_interfaces_and_traces(synthesized: Synthesized) -> None:
    offenders = []
    for stack, logical_id, resource in synthesized.all_resources():
        if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::Role"):
            continue
        documents = (
            [resource["Properties"]["PolicyDocument"]]
            if resource["Type"] == "AWS::IAM::Policy"
            else [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
        )
        for document in documents:
            for statement in statements(document):
                if "*" in as_list(statement.get("Resource", [])):
                    extra = set(as_list(statement["Action"])) - RESOURCE_STAR_ALLOWED
                    if extra:
                        offenders.append(f"{stack}/{logical_id}: {sorted(extra)}")
    assert not offenders, "Resource '*' on: " + "; ".join(offenders)


def test_each_function_has_its_own_role(synthesized: Synthesized) -> None:
    roles = [
        (stack, ref(resource["Properties"]["Role"]))
        for stack, _, resource in synthesized.all_resources()
        if resource["Type"] == "AWS::Lambda::Function"
    ]
    assert len(roles) == len(set(roles))


def test_only_the_cdk_provider_framework_uses_an_aws_managed_policy(synthesized: Synthesized) -> None:
    allowed = {(c.DATA_STACK, "AWSLambdaBasicExecutionRole")}
    for stack, logical_id, resource in synthesized.all_resources():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for arn in resource["Properties"].get("ManagedPolicyArns", []):
            name = str(arn["Fn::Join"][1][-1]).rsplit("/", 1)[-1]
            assert (stack, name) in allowed, f"{stack}/{logical_id} uses the managed policy {name}"


def _role_of(app: Synthesized, stack: str, function_name: str) -> list[dict[str, Any]]:
    function = functions_by_name(app, stack)[function_name]
    return policy_statements(app, stack, ref(function["Role"]))


def _actions(found: list[dict[str, Any]]) -> set[str]:
    return {a for s in found if s["Effect"] == "Allow" for a in as_list(s["Action"])}


def test_each_grant_gives_its_actions_and_its_environment_variable(probe: Synthesized) -> None:
    checked = set()
    for route in probe.tables.routes:
        name = NAMES.route_function(route.name)
        variables = functions_by_name(probe, c.API_STACK)[name]["Environment"]["Variables"]
        actions = _actions(_role_of(probe, c.API_STACK, name))
        for grant in route.grants:
            wanted, variable = _expectation(grant)
            assert wanted <= actions, f"{route.path} {grant}: missing {wanted - actions}"
            assert variable in variables, f"{route.path} {grant}: no {variable}"
            checked.add(grant)
    assert checked >= set(GRANTS), "the probe table covers the whole grant vocabulary"


def test_a_function_without_grants_can_reach_only_its_logs_the_network_and_the_database(probe: Synthesized) -> None:
    plain = next(r for r in probe.tables.routes if not r.grants)
    actions = _actions(_role_of(probe, c.API_STACK, NAMES.route_function(plain.name)))
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents", "rds-db:connect", *LAMBDA_RESOURCE_STAR}
    variables = functions_by_name(probe, c.API_STACK)[NAMES.route_function(plain.name)]["Environment"]["Variables"]
    grant_variables = {v for _, v in GRANT_ACTIONS.values()} | {c.queue_url_env(q.name) for q in QUEUES}
    assert not grant_variables & set(variables)


def test_secret_keys_are_usable_only_through_secrets_manager(probe: Synthesized) -> None:
    reader = next(r for r in probe.tables.routes if r.grants == ("secret:gateways", "sqs:gateway-webhooks"))
    found = _role_of(probe, c.API_STACK, NAMES.route_function(reader.name))
    decrypts = [s for s in found if "kms:Decrypt" in as_list(s["Action"]) and "Condition" in s]
    assert decrypts
    for statement in decrypts:
        assert "secretsmanager." in str(statement["Condition"]["StringEquals"]["kms:ViaService"])


def _functions(app: Synthesized) -> list[tuple[str, str, dict[str, Any]]]:
    """(stack, name, properties) of every function of the tables and the migration."""
    return [
        (stack, name, function)
        for stack in (c.API_STACK, c.JOBS_STACK, c.DATA_STACK)
        for name, function in functions_by_name(app, stack).items()
        if name.startswith(f"{NAMES.prefix}-")
    ]


def _db_users(statements_: list[dict[str, Any]]) -> list[str]:
    return [
        str(resource["Fn::Join"][1][-1]).rsplit("/", 1)[-1]
        for s in statements_
        if "rds-db:connect" in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    ]


def test_every_function_logs_in_to_the_proxy_with_iam_as_its_one_database_user(synthesized: Synthesized) -> None:
    functions = _functions(synthesized)
    assert len(functions) > 20
    for stack, name, function in functions:
        found = policy_statements(synthesized, stack, ref(function["Role"]))
        variables = function["Environment"]["Variables"]
        expected = c.DB_MASTER_USER if name == NAMES.migration_function() else c.DB_APP_USER
        assert _db_users(found) == [expected], name
        assert variables[c.ENV_DB_IAM_AUTH] == "true", name
        assert variables.get(c.ENV_DB_USER, variables.get(c.ENV_DB_OWNER_USER)) == expected, name
        if name != NAMES.migration_function():
            # No password in any function: the application secret is neither named nor readable.
            assert c.ENV_DB_SECRET_ARN not in variables, name
            assert c.ENV_DB_OWNER_SECRET_ARN not in variables, name
            readable = [s for s in found if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
            assert all("Attachment" not in str(s["Resource"]) for s in readable), name


def test_connect_grant_names_the_proxy_of_the_data_stack(real: Synthesized) -> None:
    stack, _, function = next(f for f in _functions(real) if f[0] == c.JOBS_STACK)
    (statement,) = [
        s for s in policy_statements(real, stack, ref(function["Role"])) if "rds-db:connect" in as_list(s["Action"])
    ]
    rendered = str(statement["Resource"])
    assert ":rds-db:" in rendered and ":dbuser:" in rendered
    assert "Fn::GetStackOutput" in rendered and c.DATA_STACK in rendered, "the proxy's resource id, by reference"


def test_audit_bucket_grants_reach_its_key_by_alias_through_s3_only(probe: Synthesized) -> None:
    reader = next(r for r in probe.tables.routes if r.grants == ("s3:audit-read",))
    (statement,) = [s for s in _role_of(probe, c.API_STACK, NAMES.route_function(reader.name))
                    if "kms:Decrypt" in as_list(s["Action"])]  # fmt: skip
    assert str(statement["Resource"]).endswith(":key/*']]}")
    assert statement["Condition"]["ForAnyValue:StringEquals"] == {
        "kms:ResourceAliases": NAMES.key_alias(c.AUDIT_BUCKET_KEY)
    }
    assert "s3." in str(statement["Condition"]["StringEquals"]["kms:ViaService"])


def test_queue_grants_in_the_jobs_stack_point_at_the_queue_itself(real: Synthesized) -> None:
    queues = real.resources(c.JOBS_STACK, "AWS::SQS::Queue")
    by_name = {q["Properties"]["QueueName"]: logical for logical, q in queues.items()}
    for row in SCHEDULES:
        sends = [g.removeprefix("sqs:") for g in row.grants if g.startswith("sqs:")]
        if not sends:
            continue
        function = functions_by_name(real, c.JOBS_STACK)[NAMES.job_function(row.name)]
        found = _role_of(real, c.JOBS_STACK, NAMES.job_function(row.name))
        for queue in sends:
            logical = by_name[NAMES.queue(queue)]
            assert function["Environment"]["Variables"][c.queue_url_env(queue)] == {"Ref": logical}
            assert any(
                "sqs:SendMessage" in as_list(s["Action"]) and {"Fn::GetAtt": [logical, "Arn"]} in as_list(s["Resource"])
                for s in found
            ), f"{row.name} cannot send to {queue}"


def test_sending_email_is_limited_to_the_configured_sender(probe: Synthesized) -> None:
    sender = next(r for r in probe.tables.routes if "ses:send" in r.grants)
    (statement,) = [s for s in _role_of(probe, c.API_STACK, NAMES.route_function(sender.name))
                    if "ses:SendEmail" in as_list(s["Action"])]  # fmt: skip
    address = PROBE_CONTEXT["emailFrom"]
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": address}}
    identities = [str(r) for r in statement["Resource"]]
    assert any(f":identity/{address}" in r for r in identities)
    assert any(f":identity/{address.partition('@')[2]}" in r for r in identities)


def test_without_a_configured_sender_email_is_not_granted_at_all(real: Synthesized) -> None:
    assert real.built.settings.email_from is None
    for stack in (c.API_STACK, c.JOBS_STACK):
        for name, function in functions_by_name(real, stack).items():
            assert c.ENV_EMAIL_FROM not in function["Environment"]["Variables"], name
            assert "ses:SendEmail" not in _actions(_role_of(real, stack, name)), name


def test_a_grant_the_app_cannot_map_fails_the_build_with_its_name(assets) -> None:  # type: ignore[no-untyped-def]
    route = Route("GET", "/v1/infra-probe/bad", "functions.infra_probe.bad", Access.USER, "bad", grants=("s3:nope",))
    with pytest.raises(Exception, match=r"s3:nope.*known grants"):
        build_app(tables=Tables(routes=(route,)), assets=assets, checks=False)
