"""Field encryption against KMS (moto's server standing in) and the blind-index secret."""

from __future__ import annotations

import pytest

from ledgerline.crypto import DecryptionError, blind, blind_index, decrypt_field, encrypt_field, fields
from ledgerline.crypto.fields import Envelope, FieldCipher, build_header
from ledgerline.crypto.keys import KmsKeyProvider, WrappingKeyProvider

WHERE = {"table": "bank_accounts", "column": "number_ciphertext", "row_id": "9b2e6f8c-1d3a-4c5b-8e7f-0a1b2c3d4e5f"}
ACCOUNT = "0123456789"


@pytest.fixture
def kms(aws_endpoint):
    from ledgerline.aws import clients

    return clients.client("kms")


@pytest.fixture
def default_cipher(aws_endpoint):
    fields.reset()
    blind.configure(None)
    yield fields.cipher()
    fields.reset()


def test_in_tests_and_aws_the_default_provider_is_kms(default_cipher, kms):
    assert isinstance(default_cipher.provider, KmsKeyProvider)
    blob = encrypt_field(ACCOUNT, **WHERE)
    assert decrypt_field(blob, **WHERE) == ACCOUNT
    env = Envelope.parse(blob)
    alias_target = kms.describe_key(KeyId="alias/ledgerline-field")["KeyMetadata"]["Arn"]
    assert env.key_id == alias_target  # the ARN, so retargeting the alias strands nothing


def test_kms_is_asked_once_per_data_key_not_per_field(default_cipher):
    for i in range(50):
        encrypt_field(ACCOUNT, table="t", column="c", row_id=str(i))
    assert default_cipher.stats.generated == 1


def test_a_fresh_process_unwraps_through_kms(default_cipher):
    blob = encrypt_field(ACCOUNT, **WHERE)
    reader = FieldCipher(KmsKeyProvider())
    assert reader.decrypt(blob, **WHERE) == ACCOUNT
    assert reader.stats.unwrapped == 1


def test_a_data_key_claimed_for_another_kms_key_is_refused(default_cipher, kms):
    env = Envelope.parse(encrypt_field(ACCOUNT, **WHERE))
    other = kms.create_key(Description="another key")["KeyMetadata"]["Arn"]
    forged = build_header(env.key_created_ms, other, env.wrapped_key) + env.nonce + env.ciphertext
    with pytest.raises(DecryptionError, match="KMS refused"):
        FieldCipher(KmsKeyProvider()).decrypt(forged, **WHERE)


def test_a_tampered_wrapped_data_key_is_refused_by_kms(default_cipher):
    env = Envelope.parse(encrypt_field(ACCOUNT, **WHERE))
    wrapped = bytearray(env.wrapped_key)
    wrapped[-1] ^= 0x01
    forged = build_header(env.key_created_ms, env.key_id, bytes(wrapped)) + env.nonce + env.ciphertext
    with pytest.raises(DecryptionError):
        FieldCipher(KmsKeyProvider()).decrypt(forged, **WHERE)


def test_kms_refuses_values_moved_to_another_row(default_cipher):
    blob = encrypt_field(ACCOUNT, **WHERE)
    with pytest.raises(DecryptionError, match="another row or column"):
        FieldCipher(KmsKeyProvider()).decrypt(blob, **{**WHERE, "row_id": "another"})


def test_local_stack_envelopes_are_not_sent_to_kms(default_cipher):
    local = FieldCipher(WrappingKeyProvider.random()).encrypt(ACCOUNT, **WHERE)
    with pytest.raises(DecryptionError, match="local stack"):
        FieldCipher(KmsKeyProvider()).decrypt(local, **WHERE)


def test_the_blind_index_key_comes_from_secrets_manager(default_cipher):
    from ledgerline.aws import clients, resources

    secret = clients.client("secretsmanager").get_secret_value(SecretId=resources.blind_index_secret_id())
    expected = blind.BlindIndexer(bytes.fromhex(secret["SecretString"])).index("+234 803 123 4567", kind="phone")
    assert blind_index("+2348031234567", kind="phone") == expected


def test_the_benchmark_measures_kms_with_and_without_the_cache(default_cipher):
    from ledgerline.crypto import bench

    figures = bench.measure(50, provider=KmsKeyProvider(), uncached_n=5)
    assert figures["provider"] == "KmsKeyProvider"
    assert figures["provider_calls_cached"] == 1  # the reader unwraps once
    assert figures["provider_calls_uncached"] == 10  # each field: one generate, one unwrap
    assert figures["encrypt_us_uncached"] > figures["encrypt_us_cached"] > 0
