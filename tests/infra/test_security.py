"""KMS keys and application secrets."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from infra import constants as c
from infra.settings import InfraSettings
from ledgerline.aws.resources import blind_index_secret_id, gateway_secret_id, key_alias
from ledgerline.local.aws import KEY_SPECS
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


def test_keys_survive_stack_deletion(real: Synthesized) -> None:
    for stack in (SECURITY, c.DATA_STACK):
        for key in real.resources(stack, "AWS::KMS::Key").values():
            assert key["DeletionPolicy"] == "Retain"


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
