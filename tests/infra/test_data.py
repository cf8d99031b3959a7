"""Aurora Serverless v2 behind RDS Proxy, rotated secrets, and migrations on deploy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match

from infra import constants as c
from infra.assets import PROJECT_ROOT, migrations_hash
from infra.settings import InfraSettings
from tests.infra.conftest import Synthesized
from tests.infra.helpers import as_list, functions_by_name, policy_statements, ref

DATA = c.DATA_STACK
NAMES = c.Names(InfraSettings().resource_prefix)


def test_aurora_postgresql_16_serverless_v2_encrypted_and_backed_up(real: Synthesized) -> None:
    settings = InfraSettings()
    template = real.template(DATA)
    template.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "EngineVersion": Match.string_like_regexp(r"^16\."),
            "ServerlessV2ScalingConfiguration": {
                "MinCapacity": settings.db_min_capacity,
                "MaxCapacity": settings.db_max_capacity,
            },
            "StorageEncrypted": True,
            "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^DataKey"), "Arn"]},
            "BackupRetentionPeriod": c.AURORA_BACKUP_DAYS,
            "DatabaseName": c.DB_NAME,
            "MasterUsername": c.DB_MASTER_USER,
        },
    )
    template.has_resource("AWS::RDS::DBCluster", {"DeletionPolicy": "Snapshot", "UpdateReplacePolicy": "Snapshot"})
    instances = real.resources(DATA, "AWS::RDS::DBInstance")
    assert len(instances) == 2
    assert all(i["Properties"]["DBInstanceClass"] == "db.serverless" for i in instances.values())
    assert all(i["Properties"]["PubliclyAccessible"] is False for i in instances.values())


def test_master_password_is_generated_and_never_in_the_template(real: Synthesized) -> None:
    for secret in real.resources(DATA, "AWS::SecretsManager::Secret").values():
        assert "SecretString" not in secret["Properties"]
        assert "GenerateSecretString" in secret["Properties"]
        assert ref(secret["Properties"]["KmsKeyId"]).startswith("DataKey")
    cluster = next(iter(real.resources(DATA, "AWS::RDS::DBCluster").values()))["Properties"]
    assert "{{resolve:secretsmanager:" in str(cluster["MasterUserPassword"])


def test_database_sits_in_the_isolated_subnets(real: Synthesized) -> None:
    group = next(iter(real.resources(DATA, "AWS::RDS::DBSubnetGroup").values()))["Properties"]
    network = real.raw(c.NETWORK_STACK)
    outputs = {o["Fn::GetStackOutput"]["OutputName"] for o in group["SubnetIds"]}
    subnet_ids = {ref(network["Outputs"][name]["Value"]) for name in outputs}
    for subnet_id in subnet_ids:
        tags = {t["Key"]: t["Value"] for t in network["Resources"][subnet_id]["Properties"]["Tags"]}
        assert tags["aws-cdk:subnet-type"] == "Isolated"


def test_proxy_requires_tls_and_iam_authentication_for_both_roles(real: Synthesized) -> None:
    proxy = next(iter(real.resources(DATA, "AWS::RDS::DBProxy").values()))["Properties"]
    assert proxy["RequireTLS"] is True
    assert proxy["EngineFamily"] == "POSTGRESQL"
    # Clients present an IAM token; the proxy logs in to Aurora with the role's secret.
    assert [(a["AuthScheme"], a["IAMAuth"]) for a in proxy["Auth"]] == [("SECRETS", "REQUIRED")] * 2
    attachments = real.resources(DATA, "AWS::SecretsManager::SecretTargetAttachment")
    assert {ref(a["SecretArn"]) for a in proxy["Auth"]} == set(attachments)


def test_proxy_gives_up_borrowing_a_connection_well_inside_the_api_timeout(real: Synthesized) -> None:
    (group,) = real.resources(DATA, "AWS::RDS::DBProxyTargetGroup").values()
    borrow = group["Properties"]["ConnectionPoolConfigurationInfo"]["ConnectionBorrowTimeout"]
    assert borrow == c.PROXY_BORROW_TIMEOUT.to_seconds() == 5 < c.API_TIMEOUT.to_seconds()


def test_proxy_to_aurora_egress_rule_exists_exactly_once(real: Synthesized) -> None:
    """A second identical AWS::EC2::SecurityGroupEgress is refused as a duplicate at deploy."""
    egress = [
        rule["Properties"]
        for rule in real.resources(DATA, "AWS::EC2::SecurityGroupEgress").values()
        if str(ref(rule["Properties"]["GroupId"])).startswith("DatabaseProxySecurityGroup")
        and str(ref(rule["Properties"]["DestinationSecurityGroupId"])).startswith("DatabaseClusterSecurityGroup")
    ]
    assert len(egress) == 1, egress
    ingress = [
        rule["Properties"]
        for rule in real.resources(DATA, "AWS::EC2::SecurityGroupIngress").values()
        if str(ref(rule["Properties"]["GroupId"])).startswith("DatabaseClusterSecurityGroup")
        and str(ref(rule["Properties"].get("SourceSecurityGroupId"))).startswith("DatabaseProxySecurityGroup")
    ]
    assert len(ingress) == 1, ingress


def test_cluster_deletion_protection_is_switched_on_last_so_a_failed_first_create_can_roll_back(
    real: Synthesized,
) -> None:
    resources = real.raw(DATA)["Resources"]
    (cluster_id,) = real.resources(DATA, "AWS::RDS::DBCluster")
    # In the template it would block the rollback's delete, and every cluster update would
    # send false if it said false: so it is not there at all.
    assert "DeletionProtection" not in resources[cluster_id]["Properties"]
    (switch_id,) = real.resources(DATA, "Custom::LedgerlineDeletionProtection")
    switch = resources[switch_id]
    call = json.loads(_joined(switch["Properties"]["Create"]))
    assert (call["service"], call["action"]) == ("RDS", "ModifyDBCluster")
    assert call["parameters"] == {
        "DBClusterIdentifier": f"<{cluster_id}>",
        "DeletionProtection": True,
        "ApplyImmediately": True,
    }
    assert "Delete" not in switch["Properties"], "deleting the stack must not switch the protection off"
    # It waits for every other resource of the stack, the migration's run included: when it
    # runs, the create has succeeded.
    assert set(resources) - {switch_id} <= _dependencies_of(resources, switch_id)


def test_proxy_is_reachable_only_from_the_functions_security_group(real: Synthesized) -> None:
    ingress = [
        rule["Properties"]
        for rule in real.resources(DATA, "AWS::EC2::SecurityGroupIngress").values()
        if str(ref(rule["Properties"]["GroupId"])).startswith("DatabaseProxySecurityGroup")
    ]
    assert len(ingress) == 1
    assert ingress[0]["FromPort"] == ingress[0]["ToPort"] == c.DB_PORT
    assert "AppSecurityGroup" in str(ingress[0]["SourceSecurityGroupId"])


def test_both_database_secrets_rotate_without_an_immediate_first_rotation(real: Synthesized) -> None:
    schedules = real.resources(DATA, "AWS::SecretsManager::RotationSchedule")
    assert len(schedules) == 2
    for schedule in schedules.values():
        assert schedule["Properties"]["RotationRules"] == {"ScheduleExpression": f"rate({c.SECRET_ROTATION_DAYS} days)"}
        assert schedule["Properties"]["RotateImmediatelyOnUpdate"] is False
    rotations = real.resources(DATA, "AWS::Serverless::Application")
    assert len(rotations) == 2
    for rotation in rotations.values():
        # The rotation function calls Secrets Manager: it must run in subnets with egress.
        assert "appSubnet" in str(rotation["Properties"]["Parameters"]["vpcSubnetIds"])


def test_migration_runs_as_a_custom_resource_whose_trigger_is_the_sql_hash(real: Synthesized) -> None:
    real.template(DATA).has_resource_properties(
        "Custom::LedgerlineMigration",
        {
            "ServiceToken": {"Fn::GetAtt": [Match.string_like_regexp("Provider"), "Arn"]},
            "MigrationsHash": migrations_hash(PROJECT_ROOT, c.MIGRATIONS_GLOB),
            "AppSecretArn": {"Ref": Match.string_like_regexp("AppSecretAttachment")},
        },
    )
    migration = real.resources(DATA, "Custom::LedgerlineMigration")
    depends = next(iter(migration.values()))["DependsOn"]
    assert any(d.startswith("DatabaseClusterProxy") for d in depends)
    assert any(d.startswith("DatabaseClusterWriter") for d in depends)


def test_migration_hash_changes_with_any_migration_or_routine_file(tmp_path: Path) -> None:
    folder = tmp_path / "layers/common/python/ledgerline/db/migrations"
    routines = tmp_path / "layers/common/python/ledgerline/db/routines"
    folder.mkdir(parents=True)
    routines.mkdir()
    (folder / "0001_a.sql").write_text("create table a ();")
    first = migrations_hash(tmp_path, c.MIGRATIONS_GLOB)
    (folder / "0002_b.sql").write_text("create table b ();")
    second = migrations_hash(tmp_path, c.MIGRATIONS_GLOB)
    (folder / "0002_b.sql").write_text("create table b (id int);")
    third = migrations_hash(tmp_path, c.MIGRATIONS_GLOB)
    # A function's file changes without a migration: the migrator must run again all the same.
    (routines / "f.sql").write_text("create or replace function f() returns int language sql as $$ select 1 $$;")
    fourth = migrations_hash(tmp_path, c.MIGRATIONS_GLOB)
    (routines / "f.sql").write_text("create or replace function f() returns int language sql as $$ select 2 $$;")
    (routines / "README.md").write_text("how to change a function")
    assert len({first, second, third, fourth, migrations_hash(tmp_path, c.MIGRATIONS_GLOB)}) == 5


def test_migration_hash_covers_every_packaged_migration_and_routine() -> None:
    from ledgerline.db import migrate

    hashed = {p.relative_to(PROJECT_ROOT) for p in PROJECT_ROOT.glob(c.MIGRATIONS_GLOB)}
    packaged = {*migrate.MIGRATIONS_DIR.glob("*.sql"), *migrate.ROUTINES_DIR.glob("*.sql")}
    assert hashed == {p.relative_to(PROJECT_ROOT) for p in packaged}


def test_migration_logs_in_through_the_proxy_with_iam_as_the_master_user(real: Synthesized) -> None:
    function = functions_by_name(real, DATA)[NAMES.migration_function()]
    assert function["Handler"] == c.MIGRATION_HANDLER
    variables = function["Environment"]["Variables"]
    assert variables[c.ENV_DB_HOST] == {"Fn::GetAtt": [ref(variables[c.ENV_DB_HOST]), "Endpoint"]}
    assert real.raw(DATA)["Resources"][ref(variables[c.ENV_DB_HOST])]["Type"] == "AWS::RDS::DBProxy"
    assert variables[c.ENV_DB_NAME] == c.DB_NAME
    assert variables[c.ENV_DB_OWNER_USER] == c.DB_MASTER_USER
    assert variables[c.ENV_DB_IAM_AUTH] == "true"
    assert c.ENV_DB_USER not in variables
    assert c.ENV_DB_OWNER_SECRET_ARN not in variables, "the master secret stays with the proxy"
    # It sets the application role's password from the application secret.
    app_secret = variables[c.ENV_DB_SECRET_ARN]
    assert ref(app_secret).startswith("DatabaseAppSecretAttachment")
    found = policy_statements(real, DATA, ref(function["Role"]))
    readable = [
        r for s in found if "secretsmanager:GetSecretValue" in as_list(s["Action"]) for r in as_list(s["Resource"])
    ]
    assert readable == [app_secret]
    connects = [s for s in found if "rds-db:connect" in as_list(s["Action"])]
    assert [_db_user(s) for s in connects] == [c.DB_MASTER_USER]


def _db_user(statement: dict[str, Any]) -> str:
    """The database user an ``rds-db:connect`` statement is for (``...:dbuser:<proxy id>/<user>``)."""
    (resource,) = as_list(statement["Resource"])
    return str(resource["Fn::Join"][1][-1]).rsplit("/", 1)[-1]


def _dependencies_of(resources: dict[str, Any], logical_id: str) -> set[str]:
    """Every resource ``logical_id`` waits for: DependsOn and references, transitively."""
    seen: set[str] = set()
    todo = [logical_id]
    while todo:
        current = todo.pop()
        resource = resources[current]
        found = set(as_list(resource.get("DependsOn", [])))
        text = json.dumps(resource.get("Properties", {}))
        found |= {other for other in resources if f'"{other}"' in text}
        for other in found - seen:
            seen.add(other)
            todo.append(other)
    return seen


def _joined(value: Any) -> str:
    """An ``Fn::Join`` rendered as text, references as ``<LogicalId>``."""
    if isinstance(value, str):
        return value
    delimiter, parts = value["Fn::Join"]
    return delimiter.join(part if isinstance(part, str) else f"<{ref(part)}>" for part in parts)
