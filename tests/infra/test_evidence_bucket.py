"""The dispute evidence bucket (data stack): private, SSE-KMS with its own key usable only
through S3 by the evidence routes' roles, TLS only, versioned, logged, retained, with
lifecycle rules; and the two evidence routes hold exactly their object permissions."""

from __future__ import annotations

from typing import Any

from infra import constants as c
from infra.settings import InfraSettings
from ledgerline import routes
from tests.infra.conftest import Synthesized
from tests.infra.helpers import as_list, functions_by_name, policy_statements, ref, statements

DATA = c.DATA_STACK
NAMES = c.Names(InfraSettings().resource_prefix)


def _evidence_bucket(app: Synthesized) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical, b)
        for logical, b in app.resources(DATA, "AWS::S3::Bucket").items()
        if "-evidence-" in str(b["Properties"].get("BucketName"))
    ]
    return found


def _evidence_key_id(app: Synthesized) -> str:
    (alias,) = [
        a["Properties"]
        for a in app.resources(DATA, "AWS::KMS::Alias").values()
        if a["Properties"]["AliasName"] == NAMES.key_alias(c.EVIDENCE_BUCKET_KEY)
    ]
    return str(ref(alias["TargetKeyId"]))


def test_the_evidence_bucket_is_private_encrypted_with_its_own_key_versioned_logged_and_retained(
    real: Synthesized,
) -> None:
    _, bucket = _evidence_bucket(real)
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert ref(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == _evidence_key_id(real)
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "LoggingConfiguration" in props
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    rules = props["LifecycleConfiguration"]["Rules"]
    assert any(r.get("AbortIncompleteMultipartUpload") == {"DaysAfterInitiation": 1} for r in rules)
    assert any(r.get("NoncurrentVersionExpiration") == {"NoncurrentDays": 90} for r in rules)


def test_the_evidence_bucket_refuses_plain_http(real: Synthesized) -> None:
    logical, _ = _evidence_bucket(real)
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in real.resources(DATA, "AWS::S3::BucketPolicy").values()
        if ref(p["Properties"]["Bucket"]) == logical
    ]
    denies = [s for s in statements(policy) if s["Effect"] == "Deny"]
    assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_the_evidence_key_rotates_and_is_usable_only_through_s3_by_its_grants(real: Synthesized) -> None:
    key = real.resources(DATA, "AWS::KMS::Key")[_evidence_key_id(real)]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    users = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if "Condition" in s]
    assert {s["Sid"] for s in users} == {"EvidenceUploads", "EvidenceConfirmations", "OperatorsReadEvidence"}
    for statement in users:
        assert "s3." in str(statement["Condition"]["StringEquals"]["kms:ViaService"])
    tags = {s["Sid"]: s["Condition"]["StringEquals"] for s in users}
    assert tags["EvidenceUploads"][f"aws:PrincipalTag/{c.grant_tag('s3:evidence-write')}"] == "true"
    assert tags["EvidenceConfirmations"][f"aws:PrincipalTag/{c.grant_tag('s3:evidence-read')}"] == "true"


def _route_statements(app: Synthesized, handler: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    route = routes.by_handler(handler)
    function = functions_by_name(app, c.API_STACK)[NAMES.route_function(route.name)]
    return function, policy_statements(app, c.API_STACK, ref(function["Role"]))


def test_the_evidence_routes_may_only_put_or_only_get_evidence_objects(real: Synthesized) -> None:
    reads = {"s3:GetObject", "s3:GetObjectVersion"}
    for handler, actions, key_actions in (
        ("functions.escrow.dispute_evidence_create", {"s3:PutObject"}, {"kms:GenerateDataKey", "kms:Decrypt"}),
        ("functions.escrow.dispute_evidence_confirm", reads, {"kms:Decrypt"}),
        ("functions.escrow.dispute_evidence_list", reads, {"kms:Decrypt"}),  # presigned downloads
    ):
        function, found = _route_statements(real, handler)
        s3_statements = [s for s in found if any(str(a).startswith("s3:") for a in as_list(s["Action"]))]
        listings = [s for s in s3_statements if as_list(s["Action"]) == ["s3:ListBucket"]]
        (objects,) = [s for s in s3_statements if s not in listings]
        assert set(as_list(objects["Action"])) == actions
        # Readers may list the bucket (no objects read that way): without it S3 answers a
        # key not uploaded yet with 403, and confirm could not say "nothing uploaded yet".
        assert len(listings) == (0 if "s3:PutObject" in actions else 1)
        for listing in listings:
            assert "-evidence-" in str(listing["Resource"]) and not str(listing["Resource"]).endswith("*']]}")
        assert str(objects["Resource"]).endswith(f"/{c.EVIDENCE_PREFIX}*']]}}")
        assert "-evidence-" in str(objects["Resource"])
        (key,) = [s for s in found if any(str(a).startswith("kms:") for a in as_list(s["Action"]))]
        assert set(as_list(key["Action"])) == key_actions
        assert key["Condition"]["ForAnyValue:StringEquals"] == {
            "kms:ResourceAliases": NAMES.key_alias(c.EVIDENCE_BUCKET_KEY)
        }
        assert c.ENV_EVIDENCE_BUCKET in function["Environment"]["Variables"]
