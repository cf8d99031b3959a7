"""Escrows under concurrency and crashes, against the real database: many releases of one
escrow at once pay the seller once; a release racing a refund lets exactly one win; a
posting that crashes midway leaves no trace and the retry runs. (The test session turns
the rate and velocity limits off, as for every concurrency test: tests/conftest.py.)"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest

from ledgerline.db import transaction
from ledgerline.ledger.invariants import check_invariants
from tests.faults import posting_fault
from tests.integration.test_escrow_machine import (
    Deal,
    admitted,
    audit_count,
    books,
    call,
    escrow_row,
    expected_fee,
    fee_schedule,  # noqa: F401  (the fee of releases in this module's currency)
    one,
)


def race(calls: list[tuple[Any, str, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """Run each (user, operation, args) in a thread of its own, released at once."""
    prepared = [admitted(user, op) for user, op, _ in calls]
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        user, op, args = calls[i]
        barrier.wait()
        try:
            results[i] = call(user, op, args, adm=prepared[i])
        except Exception as exc:  # surfaced below: a race must never crash
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not [r for r in results if isinstance(r, Exception) or r is None], results
    return results


def test_twenty_releases_at_once_pay_the_seller_once(database_url):
    deal = Deal(funds=1000)
    escrow = deal.reach("FUNDED", "400.00")
    before = books(deal, escrow)
    # Twenty requests of the buyer, each with its own key (twenty devices, or retries
    # without the key): one statement each.
    admitted_many = [(deal.buyer, "escrow_release", {"escrow_id": escrow["id"]}) for _ in range(20)]

    results = race(admitted_many)

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 19, results
    for status, body in results:
        if status == 409:
            assert body["code"] == "invalid_state_transition" and body["allowed_transitions"] == []
    fee = expected_fee(Decimal("400.00"))
    after = books(deal, escrow)
    assert after["seller"] - before["seller"] == Decimal("400.00") - fee
    assert after["fees"] - before["fees"] == fee and after["escrow"] == 0
    assert one("SELECT count(*) AS n FROM transactions WHERE kind = 'escrow_release' AND metadata->>'escrow_id' = %s",
               escrow["id"])["n"] == 1  # fmt: skip
    assert audit_count("escrow.released", escrow["id"]) == 1
    assert audit_count("escrow.release_failed", escrow["id"]) == 19
    assert transaction(check_invariants) == []


@pytest.mark.parametrize("round_", range(4))
def test_a_release_racing_a_refund_lets_exactly_one_win(database_url, round_):
    deal = Deal(funds=1000)
    escrow = deal.reach("FUNDED", "250.00")
    before = books(deal, escrow)

    results = race(
        [
            (deal.buyer, "escrow_release", {"escrow_id": escrow["id"]}),
            (deal.seller, "escrow_refund", {"escrow_id": escrow["id"]}),
            (deal.buyer, "escrow_dispute", {"escrow_id": escrow["id"], "reason": "changed my mind, racing"}),
        ]
    )

    winners = [body for status, body in results if status == 200]
    assert len(winners) == 1, results
    assert all(body["code"] == "invalid_state_transition" for status, body in results if status != 200)
    after = books(deal, escrow)
    moved = {k: after[k] - before[k] for k in after}
    status = escrow_row(escrow["id"])["body"]["status"]
    assert status == winners[0]["status"]
    fee = expected_fee(Decimal("250.00"))
    assert (
        moved
        == {
            "RELEASED": {"buyer": 0, "seller": Decimal("250.00") - fee, "escrow": Decimal("-250.00"), "fees": fee},
            "REFUNDED": {"buyer": Decimal("250.00"), "seller": 0, "escrow": Decimal("-250.00"), "fees": 0},
            "DISPUTED": {"buyer": 0, "seller": 0, "escrow": 0, "fees": 0},
        }[status]
    )


def test_paying_one_escrow_from_two_devices_at_once_pays_once(database_url):
    deal = Deal(funds=1000)
    escrow = deal.open("300.00")
    args = {"escrow_id": escrow["id"], "account_id": str(deal.buyer_wallet.id)}

    results = race([(deal.buyer, "escrow_fund", args), (deal.buyer, "escrow_fund", args)])

    assert sorted(status for status, _ in results) == [200, 409]
    assert books(deal, escrow)["buyer"] == 700 and books(deal, escrow)["escrow"] == 300


@pytest.mark.parametrize(("state", "target", "marker"), [
    ("AWAITING_PAYMENT", "FUNDED", "funded"),
    ("FUNDED", "RELEASED", "released"),
    ("FUNDED", "REFUNDED", "refunded"),
    ("DISPUTED", "RESOLVED_RELEASED", "released"),
])  # fmt: skip
def test_a_crash_midway_leaves_no_trace_and_the_retry_runs(database_url, owner_conn, state, target, marker):
    deal = Deal(funds=1000)
    escrow = deal.reach(state, "150.00")
    before, row = books(deal, escrow), escrow_row(escrow["id"])
    disputes = one("SELECT count(*) AS n, max(status) AS status FROM disputes WHERE escrow_id = %s", escrow["id"])
    audits = one("SELECT count(*) AS n FROM audit_log WHERE resource_id = %s", escrow["id"])["n"]
    key = uuid.uuid4()

    with posting_fault(owner_conn, f"escrow {escrow['id']} {marker}"), pytest.raises(Exception, match="simulated"):
        _ask_with_key(deal, escrow["id"], target, key)

    assert books(deal, escrow) == before and escrow_row(escrow["id"]) == row
    assert one("SELECT count(*) AS n, max(status) AS status FROM disputes WHERE escrow_id = %s",
               escrow["id"]) == disputes  # fmt: skip
    assert one("SELECT count(*) AS n FROM audit_log WHERE resource_id = %s", escrow["id"])["n"] == audits
    assert one("SELECT count(*) AS n FROM idempotency_keys WHERE key = %s", key)["n"] == 0
    # The retry with the same key runs (nothing was stored for it).
    status, body = _ask_with_key(deal, escrow["id"], target, key)
    assert status == 200 and body["status"] == target
    assert transaction(check_invariants) == []


def _ask_with_key(deal: Deal, escrow_id: str, target: str, key: uuid.UUID):
    from tests.integration.test_escrow_machine import ASK

    op, party = ASK[target]
    args: dict[str, Any] = {"escrow_id": escrow_id}
    if op == "escrow_fund":
        args["account_id"] = str(deal.buyer_wallet.id)
    if op == "escrow_resolve":
        args |= {"outcome": "release", "reason": "evidence favours the seller"}
    return call(deal.who(party), op, args, key=key)
