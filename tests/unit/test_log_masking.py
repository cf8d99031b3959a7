"""Masking: display values and the log filter that refuses to print sensitive fields."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from aws_lambda_powertools import Logger

from ledgerline.crypto import mask
from ledgerline.crypto.masking import (
    EMAIL,
    IDENTIFIER,
    SECRET,
    SensitiveDataFilter,
    classify,
    install,
    mask_email,
    scrub,
    scrub_text,
)

ACCOUNT = "0123456789"
PHONE = "+2348031234567"
PAN = "4111111111111111"
NIN = "12345678901"
OTP = "493817"
PASSWORD = "correct horse battery staple"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl"
EMAIL_ADDRESS = "ada@example.com"
SENSITIVE = [ACCOUNT, PHONE, "8031234567", PAN, NIN, OTP, PASSWORD, TOKEN, "hunter2", EMAIL_ADDRESS]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("123456789", "****6789"),
        ("0123456789", "****6789"),
        ("+234 803 123 4567", "****4567"),
        ("12345", "****45"),  # never half or more of a short value
        ("12", "****2"),
        ("", "****"),
    ],
)
def test_mask_shows_at_most_the_last_four(value, shown):
    assert mask(value) == shown


def test_mask_keeps_none_and_does_not_mask_twice():
    assert mask(None) is None
    assert mask(mask(ACCOUNT)) == "****6789"


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("password", SECRET),
        ("password_hash", SECRET),
        ("newPassword", SECRET),
        ("otp", SECRET),
        ("totp_secret", SECRET),
        ("refresh_token", SECRET),
        ("Authorization", SECRET),
        ("x-api-key", SECRET),
        ("client_secret", SECRET),
        ("pin", SECRET),
        ("account_number", IDENTIFIER),
        ("bankAccountNumber", IDENTIFIER),
        ("phone", IDENTIFIER),
        ("phone_numbers", IDENTIFIER),
        ("government_id", IDENTIFIER),
        ("bvn", IDENTIFIER),
        ("card_number", IDENTIFIER),
        ("email", EMAIL),
        ("emailAddress", EMAIL),
        ("contact_emails", EMAIL),
        ("e-mail", EMAIL),
        ("E_Mail", EMAIL),
        ("mail", EMAIL),
        ("reply_to_mail", EMAIL),
        ("email_token", SECRET),
        ("email_otp", SECRET),
        ("mailbox", None),
        ("emailer", None),
        ("idempotency_key", None),
        ("key_id", None),
        ("request_id", None),
        ("amount", None),
        ("spinner", None),
    ],
)
def test_field_names_are_classified(key, kind):
    assert classify(key) == kind


def test_free_text_loses_numbers_tokens_and_sensitive_pairs():
    text = (
        f"user 550e8400-e29b-41d4-a716-446655440000 paid 1500000.00 NGN at 2026-01-15T10:00:00Z "
        f"from account {ACCOUNT}, card 4111 1111 1111 1111, phone=+234 803 123 4567, "
        f"otp: {OTP}, Authorization: Bearer {TOKEN} {{'password': 'hunter2'}}"
    )
    out = scrub_text(text)
    for secret in [*SENSITIVE, "4111 1111 1111 1111", "803 123"]:
        assert secret not in out, secret
    for kept in ("550e8400-e29b-41d4-a716-446655440000", "1500000.00", "2026-01-15T10:00:00Z", "NGN"):
        assert kept in out


def test_structures_are_masked_by_field_name_at_any_depth():
    out = scrub(
        {
            "user": {"phone": PHONE, "email": EMAIL_ADDRESS, "bank": {"account_number": ACCOUNT, "bank": "058"}},
            "headers": {"Authorization": f"Bearer {TOKEN}", "x-request-id": "r-1"},
            "otp_codes": ["111111", "222222"],
            "amount": "12.50",
            "count": 3,
        }
    )
    assert out["user"]["phone"] == "****4567"
    assert out["user"]["bank"]["account_number"] == "****6789"
    assert out["user"]["email"] == "a****@example.com"
    assert out["headers"]["Authorization"] == "****"
    assert out["otp_codes"] == ["****", "****"]
    assert out["amount"] == "12.50" and out["count"] == 3


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("jo@example.com", "j****@example.com"),
        ("Ada.Lovelace+ledger@mail.example.co.uk", "A****@mail.example.co.uk"),
        ("j****@example.com", "j****@example.com"),  # masking twice changes nothing
        ("not an address", "****"),
        ("ada@localhost", "****"),
        ("@example.com", "****"),
        ("ada@", "****"),
        ("Ada <ada@example.com>", "****"),
        ("", "****"),
    ],
)
def test_mask_email_shows_the_first_letter_and_the_domain(value, shown):
    assert mask_email(value) == shown


def test_mask_email_keeps_none():
    assert mask_email(None) is None


def test_email_fields_are_masked_in_structures():
    out = scrub({"email": "jo@example.com", "emails": ["a@x.org", "b@y.org"], "e-mail": 42, "email_verified": True})
    assert out == {
        "email": "j****@example.com",
        "emails": ["a****@x.org", "b****@y.org"],
        "e-mail": "****",
        "email_verified": True,
    }


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("login failed for email=jo@example.com twice", "login failed for email=j****@example.com twice"),
        ("{'email': 'jo@example.com'}", "{'email': 'j****@example.com'}"),
        ('{"contactEmail": "jo@example.com"}', '{"contactEmail": "j****@example.com"}'),
        ("GET /v1/users?e-mail=jo@example.com&page=2", "GET /v1/users?e-mail=j****@example.com&page=2"),
        ("mail: jo%40example.com", "mail: ****"),
    ],
)
def test_email_pairs_are_masked_in_free_text(text, shown):
    assert scrub_text(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("GET /v1/users?email=jo@example.com 200 1.2ms", "GET /v1/users?email=j****@example.com 200 1.2ms"),
        ("GET /v1/users?phone=****4567 200 1.2ms", "GET /v1/users?phone=****4567 200 1.2ms"),
        ("GET /v1/users?token=abc 200 1.2ms", "GET /v1/users?token=**** 200 1.2ms"),
        ("pin=1234abcd then", "pin=**** then"),
    ],
)
def test_a_masked_value_keeps_the_text_after_it(text, shown):
    assert scrub_text(text) == shown


def _capture(service: str) -> tuple[Logger, io.StringIO]:
    stream = io.StringIO()
    logger = Logger(service=service, logger_handler=logging.StreamHandler(stream), level="DEBUG")
    install(logger)
    return logger, stream


def test_a_powertools_logger_never_prints_sensitive_values():
    logger, stream = _capture(f"masking-{uuid.uuid4().hex[:8]}")
    logger.append_keys(session_token=TOKEN)
    logger.info("transfer to %s from card %s", ACCOUNT, PAN, extra={"phone": PHONE, "government_id": NIN})
    logger.info({"event": "otp.sent", "otp": OTP, "to": PHONE})
    logger.info("login", extra={"body": {"email": EMAIL_ADDRESS, "password": PASSWORD}})
    try:
        raise ValueError(f"bank rejected account {ACCOUNT} for {PHONE}")
    except ValueError:
        logger.exception("payout failed")
    output = stream.getvalue()
    for secret in SENSITIVE:
        assert secret not in output, f"{secret!r} reached the log"
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) == 4  # nothing dropped
    assert lines[0]["phone"] == "****4567" and lines[0]["government_id"] == "****8901"
    assert lines[0]["session_token"] == "****"
    assert lines[2]["body"]["email"] == "a****@example.com"
    assert "ValueError" in lines[3]["exception"]


def test_child_loggers_are_masked_by_the_parents_handler():
    service = f"masking-{uuid.uuid4().hex[:8]}"
    _logger, stream = _capture(service)
    logging.getLogger(f"{service}.db").warning("retrying for account_number=%s", ACCOUNT)
    assert ACCOUNT not in stream.getvalue()
    assert "****6789" in stream.getvalue()


def test_a_plain_logging_handler_with_the_filter_is_masked_too():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SensitiveDataFilter())
    log = logging.getLogger(f"plain-{uuid.uuid4().hex[:8]}")
    log.propagate = False
    log.addHandler(handler)
    try:
        raise RuntimeError(f"secret={PASSWORD}")
    except RuntimeError:
        log.exception("card %s", PAN)
    assert PAN not in stream.getvalue()
    assert PASSWORD not in stream.getvalue()
    assert "RuntimeError" in stream.getvalue()


def test_installing_twice_masks_once():
    logger, stream = _capture(f"masking-{uuid.uuid4().hex[:8]}")
    install(logger)
    logger.info("x", extra={"account_number": ACCOUNT})
    assert json.loads(stream.getvalue())["account_number"] == "****6789"


def test_the_service_logger_has_the_filter_installed():
    from ledgerline.observability import logger

    handler = logger.logger_handler
    assert any(isinstance(f, SensitiveDataFilter) for f in handler.filters)
    assert getattr(handler.formatter, "_ledgerline_masked", False)
