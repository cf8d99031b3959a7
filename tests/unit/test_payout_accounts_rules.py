"""Payout accounts' and bulk payouts' rules that need no database: the cooling-off and
approval settings as the money statements receive them, and the request bodies."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from ledgerline import config
from ledgerline.payments import payout_accounts
from ledgerline.payments.bulk_payouts import MAX_ITEMS, CreateBulkPayout
from ledgerline.payments.payout_accounts import AddPayoutAccount
from ledgerline.payments.withdrawals import CreateWithdrawal


@pytest.fixture
def settings_from(monkeypatch):
    def apply(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        config.settings.cache_clear()

    yield apply
    config.settings.cache_clear()


def test_the_cooling_off_is_the_currencys_limit_or_the_default(settings_from):
    settings_from(LEDGERLINE_PAYOUT_ACCOUNT_COOLING_HOURS="12", LEDGERLINE_PAYOUT_ACCOUNT_COOLING_LIMIT="700;usd=7.50")

    assert payout_accounts.cooling_off("USD") == {"hours": 12, "limit": "7.50"}
    assert payout_accounts.cooling_off("ngn") == {"hours": 12, "limit": "700"}


def test_the_default_cooling_off_is_a_day_and_a_limit_per_major_currency(settings_from):
    settings_from()

    assert payout_accounts.cooling_off("NGN") == {"hours": 24, "limit": "50000.00"}
    assert payout_accounts.cooling_off("USD") == {"hours": 24, "limit": "500.00"}


def test_a_malformed_cooling_limit_fails_at_start(settings_from):
    with pytest.raises(ValueError):
        settings_from(LEDGERLINE_PAYOUT_ACCOUNT_COOLING_LIMIT="a lot")
        config.settings()


@pytest.mark.parametrize(
    "body",
    [
        {"bank_code": "058", "account_number": "0123456789", "account_name": "Mallory"},  # the bank names it
        {"bank_code": "05 8", "account_number": "0123456789"},
        {"bank_code": "058", "account_number": "01234"},
        {"bank_code": "058", "account_number": "0123456789", "provider": "venmo"},
    ],
)
def test_a_payout_account_body_says_only_what_the_enquiry_needs(body):
    with pytest.raises(ValidationError):
        AddPayoutAccount.model_validate(body)


def test_a_withdrawal_names_exactly_one_destination():
    base = {"account_id": str(uuid.uuid4()), "amount": "1.00", "currency": "NGN"}
    destination = {"bank_code": "058", "account_number": "0123456789", "account_name": "Ada"}

    assert CreateWithdrawal.model_validate({**base, "payout_account_id": str(uuid.uuid4())}).destination is None
    assert CreateWithdrawal.model_validate({**base, "destination": destination}).payout_account_id is None
    for wrong in ({}, {"destination": destination, "payout_account_id": str(uuid.uuid4())},
                  {"payout_account_id": str(uuid.uuid4()), "provider": "paystack"}):  # fmt: skip
        with pytest.raises(ValidationError):
            CreateWithdrawal.model_validate({**base, **wrong})


def test_a_bulk_payout_takes_one_to_a_thousand_items():
    item = {"payout_account_id": str(uuid.uuid4()), "amount": "1.00"}
    base = {"account_id": str(uuid.uuid4()), "currency": "NGN"}

    assert len(CreateBulkPayout.model_validate({**base, "items": [item] * MAX_ITEMS}).items) == 1000
    for items in ([], [item] * (MAX_ITEMS + 1)):
        with pytest.raises(ValidationError):
            CreateBulkPayout.model_validate({**base, "items": items})
