"""KMS keys and application secrets."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from infra import constants as c
from infra.settings import InfraSettings
from tests.infra.conftest import Synthesized

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


def test_audit_checkpoint_key_signs_asymmetrically(real: Synthesized) -> None:
    key = _keys_by_alias(real, SECURITY)[NAMES.key_alias("audit-checkpoint")]["Properties"]
    assert key["KeyUsage"] == "SIGN_VERIFY"
    assert key["KeySpec"].startswith(("ECC_", "RSA_"))


def test_field_secrets_and_data_keys_are_symmetric_and_rotate(real: Synthesized) -> None:
    keys = _keys_by_alias(real, SECURITY) | _keys_by_alias(real, c.DATA_STACK)
    for purpose in ("field", "secrets", "data"):
        key = keys[NAMES.key_alias(purpose)]
        assert key["Properties"].get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT", purpose
        assert key["Properties"]["EnableKeyRotation"] is True, purpose


def test_keys_survive_stack_deletion(real: Synthesized) -> None:
    for stack in (SECURITY, c.DATA_STACK):
        for key in real.resources(stack, "AWS::KMS::Key").values():
            assert key["DeletionPolicy"] == "Retain"


def test_gateway_and_blind_index_secrets_are_generated_never_written(real: Synthesized) -> None:
    template = real.template(SECURITY)
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
