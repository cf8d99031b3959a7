"""Events whose message carries a secret are named with the module that mints it."""

import importlib

from ledgerline import notifications
from ledgerline.auth import new_country, verification


def test_every_minted_event_names_its_own_module_and_the_module_names_it_back():
    assert set(verification.EVENTS) | {new_country.EVENT, "auth.password_reset"} == set(notifications.MINTED_BY)
    for event, module in notifications.MINTED_BY.items():
        assert callable(importlib.import_module(module).prepare_delivery), event
    assert notifications.prepare({"type": "auth.account_locked"}, run=lambda work: None) == {
        "type": "auth.account_locked"
    }, "an event without a secret passes through untouched"
