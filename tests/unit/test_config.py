import pytest

from ledgerline.config import Limit, parse_limit, parse_rate_limits


def test_limits_parse_in_the_documented_forms():
    assert parse_limit("5/minute") == Limit(5, 60)
    assert parse_limit("20/60s") == Limit(20, 60)
    assert parse_limit("50/hour") == Limit(50, 3600)
    assert parse_limit("off") is None


def test_rate_limit_spec_parses_every_named_limit():
    spec = parse_rate_limits("login=5/minute;otp=3/minute;money=off;default=50/hour")

    assert spec == {"login": Limit(5, 60), "otp": Limit(3, 60), "money": None, "default": Limit(50, 3600)}


@pytest.mark.parametrize("bad", ["5", "five/minute", "5/fortnight", ""])
def test_a_malformed_limit_is_refused_at_start(bad):
    with pytest.raises(ValueError):
        parse_limit(bad)
