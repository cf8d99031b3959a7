"""The input gate and strict parsing: hostile text is a clear 4xx, never a 500."""

from __future__ import annotations

import ast
import base64
import re
from decimal import Decimal
from pathlib import Path

import pytest

from ledgerline import errors, idempotency, instants, money, pagination, routes
from ledgerline.auth import users
from ledgerline.http import gate

ROOT = Path(__file__).resolve().parents[2]


def event(body: bytes | None = b"{}", content_type: str | None = "application/json", **extra):
    headers = {"content-type": content_type} if content_type else {}
    out = {"headers": headers, "body": base64.b64encode(body).decode() if body else None, "isBase64Encoded": True}
    out.update(extra)
    return out


def refused(ev) -> errors.DomainError:
    with pytest.raises(errors.DomainError) as caught:
        gate.check(ev)
    return caught.value


def test_a_json_body_is_parsed_once_with_exact_decimals():
    assert gate.check(event(b'{"amount": 10.50, "n": 3, "items": [{"x": "y"}]}')) == {
        "amount": Decimal("10.50"),
        "n": 3,
        "items": [{"x": "y"}],
    }
    assert gate.check(event(None, content_type=None)) is None


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"a": "\xff\xfe"}', "application/json", 400),
        (b'{"a": "x\\u0000"}', "application/json", 422),
        (b'{"a\\u0000": 1}', "application/json", 422),
        (b'{"a": "\\udc00"}', "application/json", 422),
        (b"[" * 20_000 + b"]" * 20_000, "application/json", 400),
        (b"[" * 40 + b"]" * 40, "application/json", 400),
        (b'{"n": ' + b"1" * 5_000 + b"}", "application/json", 422),
        (b'{"n": 1e99999}', "application/json", 422),
        (b'{"n": Infinity}', "application/json", 400),
        (b'{"a": 1, "a": 2}', "application/json", 400),
        (b"{}", "text/plain", 415),
        (b"{}", None, 415),
        (b"{}", "application/json; charset=iso-8859-1", 415),
        (b"a=1", "application/x-www-form-urlencoded", 415),
        (b"x" * (64 * 1024 + 1), "application/json", 413),
    ],
)
def test_hostile_bodies_are_refused_with_their_own_status(body, content_type, status):
    assert refused(event(body, content_type)).status == status


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/problem+json"]
)
def test_json_media_types_are_accepted(content_type):
    assert gate.check(event(b'{"a": 1}', content_type)) == {"a": 1}


def test_a_nul_in_a_query_value_a_path_parameter_or_a_header_names_it():
    assert refused(event(None, queryStringParameters={"cursor": "a\x00"})).errors[0].field == "cursor"
    assert refused(event(None, pathParameters={"id": "\x00"})).errors[0].field == "id"
    assert refused(event(None, headers={"user-agent": "x\x00y"})).status == 422


def test_invalid_base64_is_a_400():
    assert refused({"headers": {}, "body": "***", "isBase64Encoded": True}).status == 400


# -- one strict match everywhere: "$" matches before a final newline ---------------------------


@pytest.mark.parametrize("value", ["1.00\n", "1.00\r\n", "1\n", " 1.00", "1.00 "])
def test_an_amount_with_trailing_or_leading_whitespace_is_refused(value):
    with pytest.raises(errors.ValidationFailed):
        money.parse_amount(value, "NGN")


def test_other_patterns_refuse_a_trailing_newline():
    key = "3f0c6d2e-8b1a-4c5d-9e7f-0a1b2c3d4e5f"
    assert idempotency.parse_key(key)
    assert idempotency._UUID4.fullmatch(key + "\n") is None
    with pytest.raises(errors.ValidationFailed):
        users.check_phone("+2348031234567\n\x00")
    assert routes.match("GET", "/v1/health\n")[0] is None
    assert users.check_email("ada@example.com\u200b") == "ada@example.com"
    with pytest.raises(errors.ValidationFailed):
        users.check_email("ada@example.com\x07")


def test_no_anchored_pattern_in_the_code_relies_on_dollar():
    """``re.match`` with ``...$`` accepts a trailing newline; the code uses ``fullmatch``."""
    offenders = []
    for path in [*ROOT.glob("layers/common/python/ledgerline/**/*.py"), *ROOT.glob("functions/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("compile", "match", "search"):
                first = node.args[0] if node.args else None
                if (
                    isinstance(first, ast.Constant)
                    and isinstance(first.value, str)
                    and re.search(r"(?<!\\)\$$", first.value)
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


# -- cursors and instants ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor",
    [
        base64.urlsafe_b64encode(b'{"t": 1, "id": 2}').decode(),
        base64.urlsafe_b64encode(b"2024-01-01T00:00:00|not-a-uuid").decode(),
        base64.urlsafe_b64encode(b"2024-01-01T00:00:00|00000000-0000-0000-0000-000000000000").decode(),  # naive
        base64.urlsafe_b64encode(b"0001-01-01T00:00:00+14:00|00000000-0000-0000-0000-000000000000").decode(),
        "\x00",
        "a" * 500,
        "ÿÿ",
    ],
)
def test_a_cursor_this_api_did_not_issue_is_a_422(cursor):
    with pytest.raises(errors.ValidationFailed) as caught:
        pagination.decode(cursor)
    assert caught.value.errors[0].field == "cursor"


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-02:00", "2024-01-01", "2024-01-01T00:00:00", "x" * 100]
)
def test_an_instant_out_of_range_or_without_a_zone_is_a_422(text):
    with pytest.raises(errors.ValidationFailed):
        instants.parse(text, "at")


def test_an_instant_with_an_unescaped_plus_in_the_query_still_parses():
    assert instants.parse("2024-01-01T12:00:00 01:00", "at").isoformat() == "2024-01-01T11:00:00+00:00"
