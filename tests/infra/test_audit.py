"""The audit trail: Object Lock COMPLIANCE bucket, Glue table with projection, Athena, auditor role."""

from __future__ import annotations

import fnmatch
from datetime import date, timedelta
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from infra import constants as c
from infra.app import load_cdk_context
from infra.components.audit import AuditBucket
from infra.settings import InfraSettings
from ledgerline.local import aws as local_aws
from tests.infra.conftest import Synthesized
from tests.infra.helpers import as_list, ref, statements

AUDIT = c.AUDIT_STACK
NAMES = c.Names(InfraSettings().resource_prefix)


def _audit_bucket(app: Synthesized) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical, b["Properties"])
        for logical, b in app.resources(AUDIT, "AWS::S3::Bucket").items()
        if "ObjectLockConfiguration" in b["Properties"]
    ]
    return found


def test_audit_bucket_locks_objects_in_compliance_mode_for_400_days_by_default(real: Synthesized) -> None:
    assert InfraSettings().audit_retention_days == 400
    _, bucket = _audit_bucket(real)
    assert bucket["ObjectLockEnabled"] is True
    assert bucket["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 400}},
    }
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


def test_audit_bucket_is_kms_encrypted_private_logged_and_retained(real: Synthesized) -> None:
    _, bucket = _audit_bucket(real)
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # Its own key, in its own stack: not the database's key that also protects Aurora.
    assert ref(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == _storage_key_id(real)
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    assert "LoggingConfiguration" in bucket
    assert "audit" in str(bucket["BucketName"])
    real.template(AUDIT).has_resource("AWS::S3::Bucket", {"Properties": Match.object_like({"ObjectLockEnabled": True}),
                                                         "DeletionPolicy": "RetainExceptOnCreate",
                                                         "UpdateReplacePolicy": "Retain"})  # fmt: skip


def test_audit_bucket_policy_requires_tls_and_denies_every_delete(real: Synthesized) -> None:
    logical, _ = _audit_bucket(real)
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in real.resources(AUDIT, "AWS::S3::BucketPolicy").values()
        if ref(p["Properties"]["Bucket"]) == logical
    ]
    denies = [s for s in statements(policy) if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies if "Condition" in s)
    (no_delete,) = [s for s in denies if "s3:DeleteObject" in as_list(s["Action"])]
    assert set(as_list(no_delete["Action"])) == {"s3:DeleteObject", "s3:DeleteObjectVersion"}
    assert no_delete["Principal"] == {"AWS": "*"}
    assert "Condition" not in no_delete


@pytest.mark.parametrize("days", [30, 2555])
def test_retention_follows_the_audit_retention_days_context(days: int) -> None:
    app = App(context={**load_cdk_context(), "auditRetentionDays": str(days)})
    stack = Stack(app, "Probe")
    settings = InfraSettings.from_context(app.node)
    AuditBucket(stack, "Audit", key=kms.Key(stack, "Key"), retention_days=settings.audit_retention_days,
                bucket_name="probe-audit")  # fmt: skip
    Template.from_stack(stack).has_resource_properties(
        "AWS::S3::Bucket",
        {"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled",
                                     "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": days}}}},
    )  # fmt: skip


def test_glue_table_reads_json_lines_partitioned_by_day_with_projection(real: Synthesized) -> None:
    (table,) = real.resources(AUDIT, "AWS::Glue::Table").values()
    table_input = table["Properties"]["TableInput"]
    descriptor = table_input["StorageDescriptor"]
    assert [(col["Name"], col["Type"]) for col in descriptor["Columns"]] == list(c.AUDIT_COLUMNS)
    assert [col["Name"] for col in descriptor["Columns"]] == [
        "id", "seq", "occurred_at", "actor_id", "actor_type", "actor_ip", "user_agent", "action", "category",
        "resource_type", "resource_id", "payload_before", "payload_after", "metadata", "content_hash",
        "prev_hash", "chain_hash",
    ]  # fmt: skip
    assert table_input["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    parameters = table_input["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.dt.type"] == "date"
    assert parameters["projection.dt.format"] == "yyyy-MM-dd"
    template = parameters["storage.location.template"]
    assert template["Fn::Join"][1][-1] == f"/{c.AUDIT_PREFIX}dt=${{dt}}/"
    assert table["Properties"]["DatabaseName"] == NAMES.glue_database()


def test_athena_workgroup_encrypts_results_and_caps_bytes_scanned(real: Synthesized) -> None:
    settings = InfraSettings()
    real.template(AUDIT).has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "Name": NAMES.workgroup(),
            "WorkGroupConfiguration": Match.object_like({
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": settings.athena_bytes_scanned_cutoff,
                "ResultConfiguration": {
                    "OutputLocation": Match.any_value(),
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": Match.any_value()},
                },
            }),
        },
    )  # fmt: skip


def test_auditor_role_can_only_query(real: Synthesized) -> None:
    (role,) = [r["Properties"] for r in real.resources(AUDIT, "AWS::IAM::Role").values()
               if r["Properties"].get("RoleName") == f"{NAMES.prefix}-auditor"]  # fmt: skip
    actions = {a for p in role["Policies"] for s in statements(p["PolicyDocument"]) for a in as_list(s["Action"])}
    services = {a.split(":")[0] for a in actions}
    assert services == {"athena", "glue", "s3", "kms"}
    assert all(a.split(":")[1].startswith(("Get", "List", "BatchGet", "Start", "Stop")) for a in actions
               if a.startswith(("athena:", "glue:")))  # fmt: skip
    writes = {a for a in actions if a.startswith("s3:") and not a.startswith(("s3:Get", "s3:List"))}
    assert writes == {"s3:PutObject", "s3:AbortMultipartUpload"}
    for policy in role["Policies"]:
        for statement in statements(policy["PolicyDocument"]):
            if "s3:PutObject" in as_list(statement["Action"]):
                assert all("Results" in str(r) for r in as_list(statement["Resource"])), "writes only results"
            if any(a.startswith("athena:") for a in as_list(statement["Action"])):
                (workgroup,) = as_list(statement["Resource"])
                assert f"workgroup/{NAMES.workgroup()}" in str(workgroup)


def test_auditors_may_list_the_audit_buckets_versions_for_audit_verify(real: Synthesized) -> None:
    role = _auditor_role(real)
    (listing,) = [s for p in role["Policies"] for s in statements(p["PolicyDocument"])
                  if "s3:ListBucketVersions" in as_list(s["Action"])]  # fmt: skip
    assert as_list(listing["Action"]) == ["s3:ListBucketVersions"]
    assert ["Results" not in str(r) for r in as_list(listing["Resource"])] == [True]


def _auditor_role(app: Synthesized) -> dict[str, Any]:
    (role,) = [r["Properties"] for r in app.resources(AUDIT, "AWS::IAM::Role").values()
               if r["Properties"].get("RoleName") == NAMES.auditor_role()]  # fmt: skip
    return role


def test_only_tagged_auditors_with_a_recent_mfa_sign_in_may_assume_the_auditor_role(real: Synthesized) -> None:
    (trust,) = _auditor_role(real)["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert "root" in str(trust["Principal"]["AWS"])
    assert trust["Condition"] == {
        "Bool": {"aws:MultiFactorAuthPresent": "true"},
        "NumericLessThanEquals": {"aws:MultiFactorAuthAge": "3600"},
        "StringEquals": {f"aws:PrincipalTag/{NAMES.principal_tag('auditor')}": "true"},
    }


def _storage_key_id(app: Synthesized) -> str:
    keys = app.resources(AUDIT, "AWS::KMS::Key")
    (alias,) = [a["Properties"] for a in app.resources(AUDIT, "AWS::KMS::Alias").values()]
    assert alias["AliasName"] == NAMES.key_alias(c.AUDIT_BUCKET_KEY)
    key_id = ref(alias["TargetKeyId"])
    assert key_id in keys
    return str(key_id)


def test_audit_objects_and_query_results_have_their_own_key_usable_only_through_s3(real: Synthesized) -> None:
    key = real.resources(AUDIT, "AWS::KMS::Key")[_storage_key_id(real)]
    assert key["Properties"]["EnableKeyRotation"] is True
    users = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if "Condition" in s]
    assert {s["Sid"] for s in users} == {
        "AuditShipperWrites",
        "AuditReadersRead",
        "AuditorsQuery",
        "OperatorsVerifyTheTrail",
    }
    for statement in users:
        assert "s3." in str(statement["Condition"]["StringEquals"]["kms:ViaService"])
    (auditors,) = [s for s in users if s["Sid"] == "AuditorsQuery"]
    assert f":role/{NAMES.auditor_role()}" in str(auditors["Condition"]["ArnEquals"]["aws:PrincipalArn"])
    workgroup = next(iter(real.resources(AUDIT, "AWS::Athena::WorkGroup").values()))["Properties"]
    encryption = workgroup["WorkGroupConfiguration"]["ResultConfiguration"]["EncryptionConfiguration"]
    assert ref(encryption["KmsKey"]) == _storage_key_id(real)
    role = _auditor_role(real)
    decrypt = [
        s for p in role["Policies"] for s in statements(p["PolicyDocument"]) if "kms:Decrypt" in as_list(s["Action"])
    ]
    assert [ref(r) for s in decrypt for r in as_list(s["Resource"])] == [_storage_key_id(real)]


def test_the_default_retention_covers_twelve_months_from_any_day_and_the_local_stand_in_uses_it() -> None:
    # Twelve calendar months are up to 366 days (across a 29 February); a version's lock
    # starts when it is shipped, after its records occurred, so this bounds it from below.
    days = InfraSettings().audit_retention_days
    for offset in range(4 * 366):
        day = date(2024, 1, 1) + timedelta(days=offset)
        twelve_months_on = (
            date(day.year + 1, 3, 1) if (day.month, day.day) == (2, 29) else day.replace(year=day.year + 1)
        )
        assert day + timedelta(days=days) >= twelve_months_on, day
    # The local stand-in's bucket locks for as long as the deployed one.
    assert days == local_aws.AUDIT_RETENTION_DAYS


_LOCK_BREAKERS = (
    "s3:PutObjectRetention", "s3:BypassGovernanceRetention", "s3:PutBucketObjectLockConfiguration",
    "s3:PutObjectLegalHold", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutBucketVersioning",
    "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
)  # fmt: skip


def _allowed_actions(app: Synthesized) -> set[str]:
    actions: set[str] = set()
    for _, _, resource in app.all_resources():
        properties = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [properties["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        else:
            continue
        for document in documents:
            for statement in statements(document):
                if statement["Effect"] == "Allow":
                    actions.update(as_list(statement.get("Action", [])))
    return actions


def test_no_role_may_shorten_a_lock_delete_a_version_or_unlock_the_bucket(probe: Synthesized) -> None:
    # The probe app holds every grant of the vocabulary: none reaches past COMPLIANCE.
    actions = _allowed_actions(probe)
    assert "s3:PutObject" in actions  # the shipper's grant is seen, so the scan is not empty
    granted = {(pattern, breaker) for pattern in actions for breaker in _LOCK_BREAKERS
               if fnmatch.fnmatchcase(breaker, pattern)}  # fmt: skip
    assert granted == set()
