"""Password policy and hashing (argon2id); no database."""

import time

import pytest

from ledgerline import errors
from ledgerline.auth import passwords


@pytest.mark.parametrize("password", ["password", "12345678", "iloveyou", "Password1", "QWERTYUIOP", "sunshine"])
def test_the_most_common_passwords_are_refused_whatever_their_case(password):
    with pytest.raises(errors.ValidationFailed) as exc:
        passwords.check_policy(password)

    assert exc.value.errors[0].field == "password"
    assert "common" in exc.value.errors[0].message


def test_the_shipped_list_holds_thousands_of_passwords_of_the_minimum_length_or_more():
    common = passwords.common_passwords()

    assert len(common) > 5000
    assert all(len(p) >= passwords.MIN_LENGTH for p in common)


def test_seven_characters_are_too_few_and_eight_are_enough():
    assert passwords.problems("x7#kQ2m") == ["use at least 8 characters"]
    assert passwords.problems("x7#kQ2mZ") == []


def test_passwords_up_to_128_characters_are_accepted_and_hash_and_verify():
    long = "correct horse battery staple " * 4 + "x" * 12  # 128 characters

    assert len(long) == 128 and passwords.problems(long) == []
    assert passwords.verify_password(passwords.hash_password(long), long)
    assert passwords.problems(long + "y") == ["use at most 128 characters"]


def test_the_email_address_is_not_a_password():
    assert passwords.problems("ada.lovelace@example.com", email="Ada.Lovelace@example.com")
    assert passwords.problems("ada.lovelace", email="ada.lovelace@example.com")


def test_unicode_passwords_match_in_any_normal_form():
    composed, decomposed = "caf\u00e9-au-lait-9", "cafe\u0301-au-lait-9"
    stored = passwords.hash_password(composed)

    assert passwords.verify_password(stored, decomposed)


def test_the_hash_is_argon2id_with_64_mib_and_a_wrong_password_fails():
    stored = passwords.hash_password("a-very-good-passphrase")

    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not passwords.verify_password(stored, "a-very-good-passphrasE")
    assert not passwords.verify_password("not-a-hash", "a-very-good-passphrase")


def test_an_unknown_account_costs_as_much_as_a_wrong_password():
    stored = passwords.hash_password("a-very-good-passphrase")
    passwords.dummy_hash()  # built once per process, like a warm Lambda

    def timed(fn):
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        return sorted(runs)[1]

    wrong = timed(lambda: passwords.verify_password(stored, "wrong-passphrase"))
    unknown = timed(lambda: passwords.verify_password(None, "wrong-passphrase"))

    assert not passwords.verify_password(None, "")
    assert 0.5 < unknown / wrong < 2.0
