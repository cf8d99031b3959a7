"""Blind indexes: keyed, normalised, per kind, equality only."""

from __future__ import annotations

import hashlib

import pytest

from ledgerline.crypto import blind
from ledgerline.crypto.blind import BlindIndexer, normalise

KEY = bytes(range(32))


@pytest.fixture
def indexer():
    return BlindIndexer(KEY)


@pytest.mark.parametrize(
    ("kind", "spellings"),
    [
        ("email", ["Ada@Example.com", "  ada@example.COM ", "ada@example.com"]),
        ("phone", ["+234 803 123 4567", "+234-803-123-4567", "002348031234567", "+234 (803) 123.4567"]),
        ("bank_account", ["0123456789", "0123 456 789", "0123-456-789"]),
        ("bank_account", ["GB29 NWBK 6016 1331 9268 19", "gb29nwbk60161331926819"]),
        ("government_id", ["A1234567", "a123-4567"]),
    ],
)
def test_spellings_of_one_value_share_an_index(indexer, kind, spellings):
    assert len({indexer.index(s, kind=kind) for s in spellings}) == 1


def test_different_values_have_different_indexes(indexer):
    assert indexer.index("+2348031234567", kind="phone") != indexer.index("+2348031234568", kind="phone")


def test_a_national_number_is_not_guessed_into_an_international_one():
    assert normalise("08031234567", "phone") == "08031234567"
    assert normalise("+2348031234567", "phone") == "+2348031234567"


def test_the_same_digits_index_differently_per_kind(indexer):
    assert indexer.index("08031234567", kind="phone") != indexer.index("08031234567", kind="bank_account")


def test_the_index_depends_on_the_secret_key(indexer):
    other = BlindIndexer(bytes(reversed(KEY)))
    assert indexer.index("0123456789", kind="bank_account") != other.index("0123456789", kind="bank_account")


def test_the_index_is_not_a_plain_hash_of_the_value(indexer):
    value = "0123456789"
    index = indexer.index(value, kind="bank_account")
    assert len(index) == 32
    assert index not in {
        hashlib.sha256(value.encode()).digest(),
        hashlib.sha256(b"bank_account" + value.encode()).digest(),
    }
    assert value.encode() not in index


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("phone", "call me"),
        ("phone", "+12"),
        ("bank_account", "0123;456"),
        ("email", "no-at-sign"),
        ("email", "a b@c.d"),
    ],
)
def test_values_that_cannot_be_normalised_are_refused(indexer, kind, value):
    with pytest.raises(ValueError, match=f"cannot index this {kind}"):
        indexer.index(value, kind=kind)


def test_an_unknown_kind_is_refused(indexer):
    with pytest.raises(ValueError, match="unknown blind-index kind"):
        indexer.index("x", kind="colour")


def test_a_short_key_is_refused():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        BlindIndexer(b"short")


def test_the_module_function_uses_the_configured_key_source():
    try:
        blind.configure(lambda: KEY)
        assert blind.blind_index("0123456789", kind="bank_account") == BlindIndexer(KEY).index(
            "0123456789", kind="bank_account"
        )
        blind.configure(lambda: bytes(reversed(KEY)))
        assert blind.blind_index("0123456789", kind="bank_account") != BlindIndexer(KEY).index(
            "0123456789", kind="bank_account"
        )
    finally:
        blind.configure(None)
