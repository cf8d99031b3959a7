"""Pure rules of identity: TOTP steps, progressive delays, step-up thresholds."""

import pyotp
import pytest

from ledgerline.auth import otp, throttle


def test_a_totp_code_is_accepted_within_one_step_of_drift_and_only_once():
    secret = pyotp.random_base32(32)
    now = 1_700_000_015.0
    code = pyotp.TOTP(secret).at(now)
    step = int(now // 30)

    assert otp._totp_step(secret, code, None, now) == step
    assert otp._totp_step(secret, code, None, now + 30) == step  # one step late: still fine
    assert otp._totp_step(secret, code, None, now + 60) is None  # two steps late: refused
    assert otp._totp_step(secret, code, step, now) is None  # replay of a used step
    assert otp._totp_step(secret, "12345", None, now) is None
    assert otp._totp_step(secret, "abcdef", None, now) is None


def test_recovery_codes_carry_80_bits_and_match_however_typed():
    code = otp._recovery_code()

    assert len(code) == 19 and code.count("-") == 3
    assert otp._recovery_digest(code) == otp._recovery_digest(code.lower().replace("-", " "))


def test_delays_grow_after_three_failures_and_stop_growing_at_a_minute():
    assert [throttle.delay_after(n) for n in range(12)] == [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_attempts_before_the_lock_take_about_two_minutes_of_waiting():
    # What an attacker pays to lock a victim out once (then a reset by email unlocks).
    assert sum(throttle.delay_after(n) for n in range(1, throttle.LOCK_AFTER)) == 123


@pytest.mark.parametrize(
    ("role", "amr", "enrolment_only"),
    [
        ("admin", ["pwd"], True),
        ("auditor", ["pwd"], True),
        ("admin", ["pwd", "otp"], False),
        ("auditor", ["pwd", "otp"], False),
        ("user", ["pwd"], False),
        ("merchant", ["pwd"], False),
        ("admin", None, True),
    ],
)
def test_privileged_roles_without_a_second_factor_reach_only_enrolment(role, amr, enrolment_only):
    from ledgerline.auth import second_factor

    assert second_factor.enrolment_only(role, amr) is enrolment_only
    assert (second_factor.scope(role, amr) == second_factor.SCOPE_OTP_ENROLMENT) is enrolment_only
