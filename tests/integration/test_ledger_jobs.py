"""The ledger's scheduled jobs, invoked as EventBridge would invoke them."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

from ledgerline import ledger
from ledgerline.db import transaction
from ledgerline.ledger.testing import new_wallet, user_actor


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def scheduled_event(name: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "detail": {},
        "name": name,
    }


def test_hold_expiry_job_expires_due_holds(database_url):
    from functions.jobs import hold_expiry

    wallet = new_wallet("NGN", 50)
    hold = transaction(
        lambda cur: ledger.create_hold(
            cur,
            account_id=wallet.id,
            amount=Decimal(20),
            currency="NGN",
            expires_in_seconds=1,
            actor=user_actor(wallet.owner_id),
        )
    )
    time.sleep(1.05)
    result = hold_expiry.handler(scheduled_event("hold-expiry"), Context())
    assert result["expired"] >= 1
    assert transaction(lambda cur: ledger.get_hold(cur, hold.id)).status == "expired"
    assert transaction(lambda cur: ledger.get_account(cur, wallet.id)).balance.held == Decimal(0)


def test_balance_fold_job_empties_the_deltas_and_keeps_balances(database_url):
    from functions.jobs import balance_fold

    new_wallet("GBP", 10)
    before = transaction(lambda cur: ledger.system_account(cur, "adjustments", "GBP")).balance.posted
    assert balance_fold.handler(scheduled_event("balance-fold"), Context())["folded"] >= 1

    def deltas(cur):
        cur.execute("SELECT count(*) AS n FROM balance_deltas")
        return cur.fetchone()["n"]

    assert transaction(deltas) == 0
    assert transaction(lambda cur: ledger.system_account(cur, "adjustments", "GBP")).balance.posted == before


def test_idempotency_expiry_job_purges_old_keys(database_url, owner_conn):
    from functions.jobs import idempotency_expiry

    with owner_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body, content_type, expires_at)"
            " VALUES ('job-test', %s, 'h', 201, '{}', 'application/json', now() - interval '1 minute')",
            (str(uuid.uuid4()),),
        )
    assert idempotency_expiry.handler(scheduled_event("idempotency-expiry"), Context())["purged"] >= 1
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM idempotency_keys WHERE scope = 'job-test'")
        assert cur.fetchone()[0] == 0


def test_ledger_check_job_reports_the_books(database_url):
    from functions.reconcile import ledger_check

    new_wallet("EUR", 5)
    result = ledger_check.handler(scheduled_event("ledger-check"), Context())
    assert result == {"ok": True, "findings": []}
