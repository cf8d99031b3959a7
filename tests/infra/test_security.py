"""KMS keys and application secrets."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra import constants as c
from infra.constants import grant_tag
from infra.settings import InfraSettings
from ledgerline.aws.resources import blind_index_secret_id, gateway_secret_id, key_alias
from ledgerline.local.aws import KEY_SPECS
from tests.infra.conftest import Synthesized
from tests.infra.helpers import functions_by_name, ref

SECURITY = c.SECURITY_STACK
NAMES = c.Names(InfraSettings().resource_prefix)


def _keys_by_alias(app: Synthesized, stack: str) -> dict[str, dict[str, Any]]:
    keys = app.resources(stack, "AWS::KMS::Key")
    return {
        alias["Properties"]["AliasName"]: keys[alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]]
        for alias in app.resources(stack, "AWS::KMS::Alias").values()
    }


def test_jwt_key_is_rsa_2048_for_signing(real: Synthesized) -> None:
    key = _keys_by_alias(real, SECURITY)[NAMES.key_alias("jwt")]["Properties"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("RSA_2048", "SIGN_VERIFY")


def test_keys_match_the_local_stand_ins_and_the_runtimes_aliases(real: Synthesized) -> None:
    keys = _keys_by_alias(real, SECURITY)
    for purpose, (spec, usage) in KEY_SPECS.items():
        key = keys[key_alias(purpose)]["Properties"]  # the alias the runtime falls back to
        assert (key.get("KeySpec", "SYMMETRIC_DEFAULT"), key.get("KeyUsage", "ENCRYPT_DECRYPT")) == (spec, usage)


def test_field_secrets_and_data_keys_are_symmetric_and_rotate(real: Synthesized) -> None:
    keys = _keys_by_alias(real, SECURITY) | _keys_by_alias(real, c.DATA_STACK)
    for purpose in ("field", "secrets", "data"):
        key = keys[NAMES.key_alias(purpose)]
        assert key["Properties"].get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT", purpose
        assert key["Properties"]["EnableKeyRotation"] is True, purpose


def test_keys_survive_stack_deletion_but_not_a_failed_first_create(real: Synthesized) -> None:
    for stack in (SECURITY, c.DATA_STACK, c.AUDIT_STACK):
        for key in real.resources(stack, "AWS::KMS::Key").values():
            assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")


def test_blind_index_key_is_generated_as_64_hex_digits(real: Synthesized) -> None:
    real.template(SECURITY).has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Name": blind_index_secret_id(),
            "GenerateSecretString": {
                "PasswordLength": 64,
                "ExcludePunctuation": True,
                "ExcludeUppercase": True,
                "ExcludeCharacters": "ghijklmnopqrstuvwxyz",
                "IncludeSpace": False,
            },
        },
    )


def test_gateway_and_blind_index_secrets_are_generated_never_written(real: Synthesized) -> None:
    template = real.template(SECURITY)
    assert {NAMES.secret("gateways"), NAMES.secret("blind-index")} == {gateway_secret_id(), blind_index_secret_id()}
    for purpose in ("gateways", "blind-index"):
        template.has_resource_properties(
            "AWS::SecretsManager::Secret",
            {
                "Name": NAMES.secret(purpose),
                "GenerateSecretString": Match.any_value(),
                "KmsKeyId": Match.any_value(),
                "SecretString": Match.absent(),
            },
        )


ROOT = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
FUNCTION_ROLES = {
    "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":role/ledgerline/*"]]
}
# What using a key means (administration is everything else).
USAGE = {"kms:Sign", "kms:Verify", "kms:GetPublicKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
         "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:CreateGrant"}  # fmt: skip


def _statements(key: dict[str, Any]) -> list[dict[str, Any]]:
    return key["Properties"]["KeyPolicy"]["Statement"]


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def _usage_for(key: dict[str, Any], tag: str) -> set[str]:
    return {
        action
        for s in _statements(key)
        if s.get("Condition", {}).get("StringEquals", {}).get(f"aws:PrincipalTag/{tag}") == "true"
        for action in _actions(s)
    }


@pytest.mark.parametrize("purpose", ["jwt", "field", "audit", "secrets"])
def test_key_policy_keeps_administration_for_the_account_but_no_usage_without_a_named_principal(
    real: Synthesized, purpose: str
) -> None:
    key = _keys_by_alias(real, SECURITY)[NAMES.key_alias(purpose)]
    statements = _statements(key)
    admin = [s for s in statements if "Condition" not in s]
    assert len(admin) == 1 and admin[0]["Principal"] == {"AWS": ROOT}, "the account can still manage the key"
    assert {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:EnableKeyRotation"} <= _actions(admin[0])
    assert "kms:*" not in _actions(admin[0])
    assert not _actions(admin[0]) & USAGE, f"the account root may use the {purpose} key"
    for statement in statements:
        if _actions(statement) & USAGE:
            condition = statement["Condition"]
            named = (
                "aws:PrincipalArn" in {**condition.get("ArnLike", {}), **condition.get("ArnEquals", {})}
                or any(k.startswith("aws:PrincipalTag/") for k in condition.get("StringEquals", {}))
                or "kms:ViaService" in condition.get("StringEquals", {})
            )
            assert named, f"{purpose}: {statement.get('Sid')} grants usage to the whole account"


def test_jwt_key_signs_only_for_function_roles_holding_the_sign_grant(real: Synthesized) -> None:
    key = _keys_by_alias(real, SECURITY)[NAMES.key_alias("jwt")]
    assert _usage_for(key, grant_tag("kms:jwt-sign")) == {"kms:Sign", "kms:GetPublicKey"}
    assert _usage_for(key, grant_tag("kms:jwt-verify")) == {"kms:Verify", "kms:GetPublicKey"}
    (signers,) = [s for s in _statements(key) if "kms:Sign" in _actions(s)]
    assert signers["Condition"]["ArnLike"] == {"aws:PrincipalArn": FUNCTION_ROLES}


def test_field_key_encrypts_and_decrypts_only_for_the_field_grant_and_operators(real: Synthesized) -> None:
    key = _keys_by_alias(real, SECURITY)[NAMES.key_alias("field")]
    assert _usage_for(key, grant_tag("kms:field")) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert _usage_for(key, NAMES.principal_tag("operator")) == {"kms:GenerateDataKey", "kms:Decrypt"}
    users = [s for s in _statements(key) if _actions(s) & USAGE]
    assert len(users) == 2


def test_audit_checkpoint_key_signs_for_the_shipper_and_verifies_for_auditors(real: Synthesized) -> None:
    key = _keys_by_alias(real, SECURITY)[NAMES.key_alias("audit")]
    assert _usage_for(key, grant_tag("kms:audit-checkpoint")) == {"kms:Sign", "kms:Verify", "kms:GetPublicKey"}
    (auditors,) = [s for s in _statements(key) if "ArnEquals" in s.get("Condition", {})]
    assert str(auditors["Condition"]["ArnEquals"]["aws:PrincipalArn"]).endswith(f":role/{NAMES.auditor_role()}']]}}")
    assert _actions(auditors) == {"kms:Verify", "kms:GetPublicKey"}


def test_secrets_key_is_usable_through_secrets_manager_only(real: Synthesized) -> None:
    key = _keys_by_alias(real, SECURITY)[NAMES.key_alias("secrets")]
    for statement in _statements(key):
        if _actions(statement) & USAGE:
            assert "secretsmanager." in str(statement["Condition"]["StringEquals"]["kms:ViaService"])
            assert "kms:CreateGrant" not in _actions(statement)


@pytest.mark.parametrize(("purpose", "grant"), [("gateways", "secret:gateways"), ("blind-index", "secret:blind-index")])
def test_only_roles_holding_the_secrets_grant_and_operators_may_read_its_value(
    real: Synthesized, purpose: str, grant: str
) -> None:
    secrets = real.resources(SECURITY, "AWS::SecretsManager::Secret")
    (secret_id,) = [k for k, s in secrets.items() if s["Properties"]["Name"] == NAMES.secret(purpose)]
    (policy,) = [
        p["Properties"]["ResourcePolicy"]
        for p in real.resources(SECURITY, "AWS::SecretsManager::ResourcePolicy").values()
        if p["Properties"]["SecretId"] == {"Ref": secret_id}
    ]
    operator = {f"aws:PrincipalTag/{NAMES.principal_tag('operator')}": "true"}
    denies = {s["Sid"]: s for s in policy["Statement"]}
    assert all(s["Effect"] == "Deny" and s["Action"] == "secretsmanager:GetSecretValue" for s in denies.values())
    assert all(s["Principal"] == {"AWS": "*"} for s in denies.values())
    # (not a function role of this copy AND not an operator) OR (no grant tag AND not an operator)
    assert denies["OnlyThisCopysFunctionRoles"]["Condition"] == {
        "ArnNotLike": {"aws:PrincipalArn": FUNCTION_ROLES}, "StringNotEquals": operator,
    }  # fmt: skip
    assert denies["OnlyRolesHoldingTheGrant"]["Condition"] == {
        "StringNotEquals": {f"aws:PrincipalTag/{grant_tag(grant)}": "true", **operator}
    }


def test_function_roles_live_under_the_copys_path_and_carry_a_tag_per_grant(probe: Synthesized) -> None:
    everything = next(r for r in probe.tables.routes if r.name.endswith("everything") or "everything" in r.path)
    for stack in (c.API_STACK, c.JOBS_STACK, c.DATA_STACK):
        for name, function in functions_by_name(probe, stack).items():
            if "FunctionName" not in function and not name.startswith(NAMES.prefix):
                continue  # CDK's own (provider framework, custom resources)
            role = probe.resources(stack, "AWS::IAM::Role")[ref(function["Role"])]["Properties"]
            assert role["Path"] == f"/{NAMES.prefix}/", name
    function = functions_by_name(probe, c.API_STACK)[NAMES.route_function(everything.name)]
    role = probe.resources(c.API_STACK, "AWS::IAM::Role")[ref(function["Role"])]["Properties"]
    tags = {t["Key"]: t["Value"] for t in role["Tags"]}
    assert {grant_tag(g) for g in everything.grants} <= {k for k, v in tags.items() if v == "true"}
