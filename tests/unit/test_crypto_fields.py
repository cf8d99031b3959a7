"""Field envelope encryption, with an in-memory key provider (no KMS, no sockets)."""

from __future__ import annotations

import os
import stat
import struct
import threading
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerline.crypto import DecryptionError
from ledgerline.crypto.fields import NO_CACHE, CachePolicy, Envelope, FieldCipher, build_header, key_created_ms
from ledgerline.crypto.keys import LocalKeyProvider, WrappingKeyProvider

ACCOUNT = "0123456789"
WHERE = {"table": "bank_accounts", "column": "number_ciphertext", "row_id": "5f1d3c1e-0000-4000-8000-000000000001"}


class CountingProvider(WrappingKeyProvider):
    """A real wrapping provider that counts how often it is asked (what the caches save)."""

    def __init__(self) -> None:
        super().__init__(os.urandom(32))
        self.generated = 0
        self.unwrapped = 0

    def generate_data_key(self):
        self.generated += 1
        return super().generate_data_key()

    def unwrap(self, wrapped, key_id):
        self.unwrapped += 1
        return super().unwrap(wrapped, key_id)


@pytest.fixture
def provider():
    return CountingProvider()


@pytest.fixture
def cipher(provider):
    return FieldCipher(provider)


def test_a_field_round_trips(cipher):
    blob = cipher.encrypt(ACCOUNT, **WHERE)
    assert isinstance(blob, bytes)
    assert ACCOUNT.encode() not in blob
    assert cipher.decrypt(blob, **WHERE) == ACCOUNT


def test_database_bytes_in_any_buffer_type_decrypt(cipher):
    blob = cipher.encrypt(ACCOUNT, **WHERE)
    assert cipher.decrypt(memoryview(blob), **WHERE) == ACCOUNT
    assert cipher.decrypt(bytearray(blob), **WHERE) == ACCOUNT


@settings(max_examples=60, deadline=None)
@given(value=st.text(max_size=300), row=st.uuids())
def test_any_text_round_trips_for_any_row(value, row):
    cipher = FieldCipher(WrappingKeyProvider(b"\x07" * 32))
    blob = cipher.encrypt(value, table="t", column="c", row_id=row)
    assert cipher.decrypt(blob, table="t", column="c", row_id=str(row)) == value


def test_the_same_value_encrypts_differently_each_time(cipher):
    assert cipher.encrypt(ACCOUNT, **WHERE) != cipher.encrypt(ACCOUNT, **WHERE)


def test_the_envelope_describes_itself(cipher, provider):
    before_ms = int(__import__("time").time() * 1000)
    env = Envelope.parse(cipher.encrypt(ACCOUNT, **WHERE))
    assert env.version == 1
    assert env.key_id == provider.key_id
    assert before_ms - 1000 <= env.key_created_ms <= before_ms + 1000
    assert provider.unwrap(env.wrapped_key, env.key_id)  # the wrapped data key opens under the provider
    assert len(env.nonce) == 12
    assert len(env.ciphertext) == len(ACCOUNT) + 16


@pytest.mark.parametrize(
    "moved",
    [
        {"row_id": "5f1d3c1e-0000-4000-8000-000000000002"},
        {"column": "routing_ciphertext"},
        {"table": "users"},
    ],
    ids=["another-row", "another-column", "another-table"],
)
def test_a_ciphertext_moved_to_another_place_does_not_decrypt(cipher, moved):
    blob = cipher.encrypt(ACCOUNT, **WHERE)
    with pytest.raises(DecryptionError, match="altered, or it belongs to another row or column"):
        cipher.decrypt(blob, **{**WHERE, **moved})


def test_swapping_two_rows_ciphertexts_is_detected(cipher):
    a = cipher.encrypt("1111111111", table="t", column="c", row_id="a")
    b = cipher.encrypt("2222222222", table="t", column="c", row_id="b")
    with pytest.raises(DecryptionError):
        cipher.decrypt(b, table="t", column="c", row_id="a")
    with pytest.raises(DecryptionError):
        cipher.decrypt(a, table="t", column="c", row_id="b")


def test_every_flipped_byte_is_detected(cipher):
    blob = cipher.encrypt(ACCOUNT, **WHERE)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(DecryptionError):
            cipher.decrypt(bytes(tampered), **WHERE)


def test_a_truncated_or_extended_envelope_is_refused(cipher):
    blob = cipher.encrypt(ACCOUNT, **WHERE)
    for cut in (0, 1, 5, 12, len(blob) - 17, len(blob) - 1):
        with pytest.raises(DecryptionError):
            cipher.decrypt(blob[:cut], **WHERE)
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob + b"\x00", **WHERE)


def test_a_header_rewritten_to_claim_a_newer_key_fails(cipher):
    """The generation stamp is authenticated: making an old row look rotated breaks it."""
    env = Envelope.parse(cipher.encrypt(ACCOUNT, **WHERE))
    forged = build_header(env.key_created_ms + 10_000, env.key_id, env.wrapped_key) + env.nonce + env.ciphertext
    assert key_created_ms(forged) == env.key_created_ms + 10_000
    with pytest.raises(DecryptionError):
        cipher.decrypt(forged, **WHERE)


def test_an_unknown_format_version_is_named(cipher):
    blob = bytearray(cipher.encrypt(ACCOUNT, **WHERE))
    blob[0] = 9
    with pytest.raises(DecryptionError, match="format version 9"):
        cipher.decrypt(bytes(blob), **WHERE)


def test_the_wrong_master_key_cannot_decrypt(cipher):
    blob = cipher.encrypt(ACCOUNT, **WHERE)
    stranger = FieldCipher(WrappingKeyProvider.random())
    with pytest.raises(DecryptionError, match="wrapped by key"):
        stranger.decrypt(blob, **WHERE)


def test_a_wrapped_data_key_from_another_master_key_is_refused(cipher, provider):
    """Same key id claimed, different wrapped key: the wrap's tag catches it."""
    env = Envelope.parse(cipher.encrypt(ACCOUNT, **WHERE))
    other = WrappingKeyProvider.random().generate_data_key()
    forged = build_header(env.key_created_ms, env.key_id, other.wrapped) + env.nonce + env.ciphertext
    with pytest.raises(DecryptionError, match="altered"):
        FieldCipher(provider).decrypt(forged, **WHERE)


def test_decryption_errors_never_echo_the_plaintext(cipher):
    blob = cipher.encrypt(ACCOUNT, **WHERE)
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(blob, **{**WHERE, "row_id": "x"})
    assert ACCOUNT not in str(info.value)


def test_the_place_is_required_and_values_are_text(cipher):
    with pytest.raises(ValueError, match="row_id"):
        cipher.encrypt(ACCOUNT, table="t", column="c", row_id="")
    with pytest.raises(TypeError):
        cipher.encrypt(123456789, **WHERE)  # type: ignore[arg-type]


def test_associated_data_fields_cannot_be_shifted_between_each_other(cipher):
    blob = cipher.encrypt(ACCOUNT, table="ab", column="c", row_id="1")
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, table="a", column="bc", row_id="1")


# ------------------------------------------------------------------ data-key caches


def test_with_the_cache_one_data_key_serves_many_fields(cipher, provider):
    blobs = [cipher.encrypt(f"{i:010d}", table="t", column="c", row_id=str(i)) for i in range(200)]
    assert provider.generated == 1
    assert [cipher.decrypt(b, table="t", column="c", row_id=str(i)) for i, b in enumerate(blobs)] == [
        f"{i:010d}" for i in range(200)
    ]
    assert provider.unwrapped == 0  # its own data key is already in the read cache


def test_a_data_key_is_replaced_after_its_use_limit(provider):
    cipher = FieldCipher(provider, CachePolicy(max_uses=10))
    for i in range(25):
        cipher.encrypt("x", table="t", column="c", row_id=str(i))
    assert provider.generated == 3


def test_a_data_key_is_replaced_after_its_age_limit(provider):
    now = [1000.0]
    cipher = FieldCipher(provider, CachePolicy(max_age_seconds=60), monotonic=lambda: now[0])
    first = Envelope.parse(cipher.encrypt("x", table="t", column="c", row_id="1"))
    now[0] += 59
    second = Envelope.parse(cipher.encrypt("x", table="t", column="c", row_id="2"))
    now[0] += 2
    third = Envelope.parse(cipher.encrypt("x", table="t", column="c", row_id="3"))
    assert first.wrapped_key == second.wrapped_key != third.wrapped_key
    assert provider.generated == 2


def test_a_reader_unwraps_each_data_key_once(provider):
    writer = FieldCipher(provider)
    blobs = [writer.encrypt("v", table="t", column="c", row_id=str(i)) for i in range(50)]
    reader = FieldCipher(provider)
    for i, blob in enumerate(blobs):
        assert reader.decrypt(blob, table="t", column="c", row_id=str(i)) == "v"
    assert provider.unwrapped == 1


def test_without_the_cache_every_field_has_its_own_data_key(provider):
    cipher = FieldCipher(provider, NO_CACHE)
    blobs = [cipher.encrypt("v", table="t", column="c", row_id=str(i)) for i in range(5)]
    assert provider.generated == 5
    assert len({Envelope.parse(b).wrapped_key for b in blobs}) == 5
    for i, blob in enumerate(blobs):
        cipher.decrypt(blob, table="t", column="c", row_id=str(i))
    assert provider.unwrapped == 5


def test_the_read_cache_is_bounded(provider):
    cipher = FieldCipher(provider, CachePolicy(max_uses=2, max_decrypt_keys=3))
    blobs = [cipher.encrypt("v", table="t", column="c", row_id=str(i)) for i in range(20)]
    reader = FieldCipher(provider, CachePolicy(max_decrypt_keys=3))
    for i, blob in enumerate(blobs):
        reader.decrypt(blob, table="t", column="c", row_id=str(i))
    assert len(reader._unwrapped) == 3


def test_rows_written_under_an_older_data_key_stay_readable(cipher):
    old = cipher.encrypt(ACCOUNT, **WHERE)
    cipher.retire_encryption_key()
    new = cipher.encrypt(ACCOUNT, **WHERE)
    assert Envelope.parse(old).wrapped_key != Envelope.parse(new).wrapped_key
    cipher.forget_keys()
    assert cipher.decrypt(old, **WHERE) == cipher.decrypt(new, **WHERE) == ACCOUNT


def test_threads_share_one_data_key(provider):
    cipher = FieldCipher(provider)
    results: list[bytes] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(50):
            blob = cipher.encrypt(f"{n}-{i}", table="t", column="c", row_id=f"{n}-{i}")
            with lock:
                results.append(blob)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert provider.generated == 1
    assert len(results) == 400
    nonces = {Envelope.parse(b).nonce for b in results}
    assert len(nonces) == 400


# ------------------------------------------------------------------ the local key file


def test_the_local_master_key_survives_a_restart(tmp_path):
    path = tmp_path / "keys" / "field-master.key"
    blob = FieldCipher(LocalKeyProvider(path)).encrypt(ACCOUNT, **WHERE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    restarted = FieldCipher(LocalKeyProvider(path))
    assert restarted.decrypt(blob, **WHERE) == ACCOUNT


def test_a_replaced_local_key_file_cannot_read_old_rows(tmp_path):
    path = tmp_path / "field-master.key"
    blob = FieldCipher(LocalKeyProvider(path)).encrypt(ACCOUNT, **WHERE)
    path.unlink()
    with pytest.raises(DecryptionError, match="local key file was replaced"):
        FieldCipher(LocalKeyProvider(path)).decrypt(blob, **WHERE)


def test_a_corrupt_local_key_file_is_refused_not_replaced(tmp_path):
    path = tmp_path / "field-master.key"
    path.write_text("not hex")
    with pytest.raises(RuntimeError, match="restore it from a backup"):
        LocalKeyProvider(path)
    assert path.read_text() == "not hex"


def test_the_local_key_file_is_private_even_if_loosened(tmp_path):
    path = tmp_path / "field-master.key"
    LocalKeyProvider(path)
    path.chmod(0o644)
    LocalKeyProvider(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_envelope_stamp_sits_where_rotation_reads_it(cipher):
    blob = cipher.encrypt(ACCOUNT, **WHERE)
    (stamp,) = struct.unpack(">Q", blob[1:9])
    assert stamp == key_created_ms(blob)
    assert uuid.UUID(WHERE["row_id"])  # the fixture's id is a real UUID, as in the tables


@pytest.fixture
def local_stack(monkeypatch, tmp_path):
    from ledgerline import config

    monkeypatch.setenv("LEDGERLINE_ENV", "local")
    monkeypatch.setenv("LEDGERLINE_DATA_DIR", str(tmp_path))
    config.settings.cache_clear()
    yield tmp_path
    config.settings.cache_clear()


def test_the_local_stack_keeps_its_master_key_in_the_data_directory(local_stack):
    """moto's KMS keys are new on every start; a key file survives restarts."""
    from ledgerline.crypto.keys import default_provider

    provider = default_provider()
    assert isinstance(provider, LocalKeyProvider)
    assert provider.path == local_stack / "keys" / "field-master.key"
    blob = FieldCipher(provider).encrypt(ACCOUNT, **WHERE)
    assert FieldCipher(default_provider()).decrypt(blob, **WHERE) == ACCOUNT
