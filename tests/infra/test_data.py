"""Aurora Serverless v2 behind RDS Proxy, rotated secrets, and migrations on deploy."""

from __future__ import annotations

from pathlib import Path

from aws_cdk.assertions import Match

from infra import constants as c
from infra.assets import PROJECT_ROOT, migrations_hash
from infra.settings import InfraSettings
from tests.infra.conftest import Synthesized
from tests.infra.helpers import as_list, functions_by_name, policy_statements, ref

DATA = c.DATA_STACK
NAMES = c.Names(InfraSettings().resource_prefix)


def test_aurora_postgresql_16_serverless_v2_encrypted_protected_and_backed_up(real: Synthesized) -> None:
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
            "DeletionProtection": True,
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


def test_proxy_requires_tls_and_authenticates_both_roles_with_secrets(real: Synthesized) -> None:
    proxy = next(iter(real.resources(DATA, "AWS::RDS::DBProxy").values()))["Properties"]
    assert proxy["RequireTLS"] is True
    assert proxy["EngineFamily"] == "POSTGRESQL"
    assert [a["AuthScheme"] for a in proxy["Auth"]] == ["SECRETS", "SECRETS"]
    attachments = real.resources(DATA, "AWS::SecretsManager::SecretTargetAttachment")
    assert {ref(a["SecretArn"]) for a in proxy["Auth"]} == set(attachments)


def test_proxy_is_reachable_only_from_the_functions_security_group(real: Synthesized) -> None:
    ingress = [
        rule["Properties"]
        for rule in real.resources(DATA, "AWS::EC2::SecurityGroupIngress").values()
        if ref(rule["Properties"]["GroupId"]).startswith("DatabaseProxySecurityGroup")
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


def test_migration_hash_changes_with_any_migration_file(tmp_path: Path) -> None:
    folder = tmp_path / "layers/common/python/ledgerline/db/migrations"
    folder.mkdir(parents=True)
    (folder / "0001_a.sql").write_text("create table a ();")
    first = migrations_hash(tmp_path, c.MIGRATIONS_GLOB)
    (folder / "0002_b.sql").write_text("create table b ();")
    second = migrations_hash(tmp_path, c.MIGRATIONS_GLOB)
    (folder / "0002_b.sql").write_text("create table b (id int);")
    assert len({first, second, migrations_hash(tmp_path, c.MIGRATIONS_GLOB)}) == 3


def test_migration_function_holds_the_owner_secret_and_may_read_it(real: Synthesized) -> None:
    function = functions_by_name(real, DATA)[NAMES.migration_function()]
    assert function["Handler"] == c.MIGRATION_HANDLER
    variables = function["Environment"]["Variables"]
    owner = variables[c.ENV_DB_OWNER_SECRET_ARN]
    assert ref(owner).startswith("DatabaseClusterSecretAttachment")
    assert ref(variables[c.ENV_DB_SECRET_ARN]).startswith("DatabaseAppSecretAttachment")
    readable = [
        resource
        for statement in policy_statements(real, DATA, ref(function["Role"]))
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    ]
    assert owner in readable
