"""Refusals never describe someone else's account (migration 0008).

With an owner (``p_owner``: a user moving their own money), a credited account the
caller does not own that cannot take the money (wrong currency, frozen, closed) is one
answer: 409 ``account <id> cannot receive this transfer``; an account of a kind the caller
may not pay is exactly as unknown as a missing one: ``account <id> not found``. The
caller's own accounts, and administrative postings (no owner), keep detailed messages.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from ledgerline import errors, ledger
from ledgerline.db import transaction
from ledgerline.ledger import Leg
from ledgerline.ledger.model import USER_CREDITABLE_KINDS
from ledgerline.ledger.testing import TEST_ADMIN, new_wallet, user_actor


def tx(fn):
    return transaction(fn)


def pay(src, dst_id, amount, currency, *, owner_id):
    return tx(
        lambda cur: ledger.transfer(
            cur,
            from_account_id=src.id,
            to_account_id=dst_id,
            amount=Decimal(amount),
            currency=currency,
            actor=user_actor(src.owner_id),
            owner_id=owner_id,
            credit_kinds=USER_CREDITABLE_KINDS,
        )
    )


def refusal(fn) -> errors.DomainError:
    with pytest.raises(errors.DomainError) as caught:
        fn()
    return caught.value


def posted(account_id):
    return tx(lambda cur: ledger.get_account(cur, account_id)).balance.posted


def shape(err: errors.DomainError, account_id) -> tuple:
    """What a caller sees, with the account id taken out."""
    return type(err), err.status, err.code, err.detail.replace(str(account_id), "<id>")


@pytest.fixture(autouse=True)
def books_stay_right(database_url):
    yield
    assert tx(ledger.check_invariants) == []


def test_a_foreign_wrong_currency_frozen_or_closed_account_is_one_answer(database_url):
    src = new_wallet("NGN", "100")
    usd = new_wallet("USD", "7")
    frozen = new_wallet("NGN", "3")
    closed = new_wallet("NGN")
    tx(lambda cur: ledger.freeze(cur, frozen.id, actor=TEST_ADMIN, reason="kyc review"))
    tx(lambda cur: ledger.close(cur, closed.id, actor=TEST_ADMIN, reason="customer asked"))

    answers = {
        "currency": (usd.id, refusal(lambda: pay(src, usd.id, "1.00", "NGN", owner_id=src.owner_id))),
        "frozen": (frozen.id, refusal(lambda: pay(src, frozen.id, "1.00", "NGN", owner_id=src.owner_id))),
        "closed": (closed.id, refusal(lambda: pay(src, closed.id, "1.00", "NGN", owner_id=src.owner_id))),
    }
    for account_id, err in answers.values():
        assert isinstance(err, errors.Conflict)
        assert (err.status, err.code) == (409, "conflict")
        assert err.detail == f"account {account_id} cannot receive this transfer"
        for word in ("USD", "NGN", "frozen", "closed", "holds", "available"):
            assert word not in err.detail
    assert len({shape(err, account_id) for account_id, err in answers.values()}) == 1
    assert (posted(src.id), posted(usd.id), posted(frozen.id), posted(closed.id)) == (
        Decimal("100"),
        Decimal("7"),
        Decimal("3"),
        Decimal("0"),
    )


def test_a_system_account_is_exactly_as_unknown_as_a_missing_one(database_url):
    src = new_wallet("NGN", "10")
    fees = tx(lambda cur: ledger.system_account(cur, "fees_revenue", "NGN"))
    ghost = uuid.uuid4()
    system = refusal(lambda: pay(src, fees.id, "1.00", "NGN", owner_id=src.owner_id))
    missing = refusal(lambda: pay(src, ghost, "1.00", "NGN", owner_id=src.owner_id))
    assert system.detail == f"account {fees.id} not found"
    assert missing.detail == f"account {ghost} not found"
    assert shape(system, fees.id) == shape(missing, ghost)
    assert isinstance(system, errors.NotFound) and system.status == 404
    assert posted(src.id) == Decimal("10")


def test_the_callers_own_accounts_keep_their_detailed_messages(database_url):
    src = new_wallet("NGN", "10")
    own_usd = new_wallet("USD", owner_id=src.owner_id)
    own_frozen = new_wallet("NGN", owner_id=src.owner_id)
    dst = new_wallet("NGN")
    with pytest.raises(errors.ValidationFailed, match="holds USD, not NGN"):
        pay(src, own_usd.id, "1.00", "NGN", owner_id=src.owner_id)
    with pytest.raises(errors.ValidationFailed, match="holds NGN, not USD"):
        pay(src, own_usd.id, "1.00", "USD", owner_id=src.owner_id)
    tx(lambda cur: ledger.freeze(cur, own_frozen.id, actor=TEST_ADMIN, reason="kyc review"))
    with pytest.raises(errors.Conflict, match="is frozen"):
        pay(src, own_frozen.id, "1.00", "NGN", owner_id=src.owner_id)
    with pytest.raises(errors.InsufficientFunds, match=r"has 10\.0+ NGN available"):
        pay(src, dst.id, "10.01", "NGN", owner_id=src.owner_id)
    tx(lambda cur: ledger.freeze(cur, src.id, actor=TEST_ADMIN, reason="kyc review"))
    with pytest.raises(errors.Conflict, match="is frozen"):
        pay(src, dst.id, "1.00", "NGN", owner_id=src.owner_id)
    assert posted(src.id) == Decimal("10")


def test_administrative_postings_keep_their_detailed_messages(database_url):
    src, usd, frozen = new_wallet("NGN", "10"), new_wallet("USD"), new_wallet("NGN")
    tx(lambda cur: ledger.freeze(cur, frozen.id, actor=TEST_ADMIN, reason="kyc review"))
    with pytest.raises(errors.ValidationFailed, match="holds USD, not NGN"):
        pay(src, usd.id, "1.00", "NGN", owner_id=None)
    with pytest.raises(errors.Conflict, match="is frozen"):
        pay(src, frozen.id, "1.00", "NGN", owner_id=None)


def test_the_callers_own_refusal_comes_first_whatever_the_account_ids(database_url):
    """Both sides refused: the caller's own account speaks, the foreign one stays quiet;
    the same request always gets the same answer (rows arrive in hash order)."""
    for _ in range(8):
        src = new_wallet("NGN", "5")
        frozen = new_wallet("NGN")
        tx(lambda cur, frozen=frozen: ledger.freeze(cur, frozen.id, actor=TEST_ADMIN, reason="kyc review"))
        with pytest.raises(errors.ValidationFailed, match=f"account {src.id} holds NGN, not USD"):
            pay(src, frozen.id, "1.00", "USD", owner_id=src.owner_id)
        with pytest.raises(errors.InsufficientFunds, match=f"account {src.id} has"):
            pay(src, frozen.id, "6.00", "NGN", owner_id=src.owner_id)
    ghost = uuid.uuid4()

    def two_destinations(cur):
        return ledger.post_transaction(
            cur,
            kind="split",
            legs=[
                Leg(src.id, Decimal("-2"), "NGN"),
                Leg(frozen.id, Decimal("1"), "NGN"),
                Leg(ghost, Decimal("1"), "NGN"),
            ],
            actor=user_actor(src.owner_id),
            owner_id=src.owner_id,
        )

    with pytest.raises(errors.NotFound, match=f"account {ghost} not found"):
        tx(two_destinations)


def test_a_multi_leg_posting_hides_only_the_foreign_leg(database_url):
    src = new_wallet("NGN", "100")
    seller = new_wallet("NGN")
    fees = tx(lambda cur: ledger.system_account(cur, "fees_revenue", "NGN"))
    tx(lambda cur: ledger.freeze(cur, seller.id, actor=TEST_ADMIN, reason="kyc review"))

    def buy(cur):
        return ledger.post_transaction(
            cur,
            kind="purchase",
            legs=[
                Leg(src.id, Decimal("-10"), "NGN"),
                Leg(seller.id, Decimal("9"), "NGN"),
                Leg(fees.id, Decimal("1"), "NGN", entry_type="fee"),
            ],
            actor=user_actor(src.owner_id),
            owner_id=src.owner_id,
        )

    with pytest.raises(errors.Conflict) as caught:
        tx(buy)
    assert caught.value.detail == f"account {seller.id} cannot receive this transfer"
    assert posted(src.id) == Decimal("100")


def test_capturing_a_hold_to_a_foreign_account_is_the_same_answer(database_url):
    src = new_wallet("NGN", "50")
    usd, frozen = new_wallet("USD"), new_wallet("NGN")
    fees = tx(lambda cur: ledger.system_account(cur, "fees_revenue", "NGN"))
    tx(lambda cur: ledger.freeze(cur, frozen.id, actor=TEST_ADMIN, reason="kyc review"))
    hold = tx(
        lambda cur: ledger.create_hold(
            cur,
            account_id=src.id,
            amount=Decimal("20"),
            currency="NGN",
            actor=user_actor(src.owner_id),
            owner_id=src.owner_id,
        )
    )

    def capture(to_id, owner_id=src.owner_id):
        return tx(
            lambda cur: ledger.capture_hold(
                cur,
                hold.id,
                to_account_id=to_id,
                actor=user_actor(src.owner_id),
                owner_id=owner_id,
                credit_kinds=USER_CREDITABLE_KINDS,
            )
        )

    for target in (usd, frozen):
        err = refusal(lambda target=target: capture(target.id))
        assert isinstance(err, errors.Conflict)
        assert err.detail == f"account {target.id} cannot receive this transfer"
    assert refusal(lambda: capture(fees.id)).detail == f"account {fees.id} not found"
    # Without an owner (an administrator's capture) the detail stays.
    with pytest.raises(errors.Conflict, match="is frozen"):
        capture(frozen.id, owner_id=None)
    # Nothing moved and the hold is still active.
    again = tx(lambda cur: ledger.get_hold(cur, hold.id))
    assert again.status == "active"
    assert tx(lambda cur: ledger.get_account(cur, src.id)).balance.held == Decimal("20")
    assert posted(src.id) == Decimal("50")
    # The caller's own frozen account keeps its detail on capture too.
    own = new_wallet("NGN", owner_id=src.owner_id)
    tx(lambda cur: ledger.freeze(cur, own.id, actor=TEST_ADMIN, reason="kyc review"))
    with pytest.raises(errors.Conflict, match="is frozen"):
        capture(own.id)


def test_the_posting_function_still_forces_generic_plans(owner_conn):
    with owner_conn.cursor() as cur:
        cur.execute(
            """
            SELECT p.proname, p.proconfig, p.prosecdef FROM pg_proc p
             WHERE p.proname IN ('ledger_post_legs', 'ledger_hold_capture') AND p.pronamespace = 'public'::regnamespace
            """
        )
        rows = {r[0]: (r[1] or [], r[2]) for r in cur.fetchall()}
    assert set(rows) == {"ledger_post_legs", "ledger_hold_capture"}
    post_config, post_definer = rows["ledger_post_legs"]
    assert "plan_cache_mode=force_generic_plan" in post_config
    assert any(c.startswith("search_path=") for c in post_config)
    capture_config, capture_definer = rows["ledger_hold_capture"]
    assert any(c.startswith("search_path=") for c in capture_config)
    assert post_definer and capture_definer
    with owner_conn.cursor() as cur:
        cur.execute(
            """
            SELECT has_function_privilege('ledgerline_app', p.oid, 'EXECUTE'),
                   has_function_privilege('public', p.oid, 'EXECUTE')
              FROM pg_proc p WHERE p.proname IN ('ledger_post_legs', 'ledger_hold_capture')
            """
        )
        assert cur.fetchall() == [(True, False), (True, False)]


def test_an_unknown_account_is_not_found_with_or_without_an_owner(database_url):
    src = new_wallet("NGN", 10)
    ghost = uuid.uuid4()
    for owner_id in (src.owner_id, None):
        with pytest.raises(errors.NotFound) as caught:
            pay(src, ghost, "1", "NGN", owner_id=owner_id)
        assert caught.value.detail == f"account {ghost} not found"
