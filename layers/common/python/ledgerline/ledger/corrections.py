"""Corrections: reversals of posted transactions and manual adjustments. Both are new
transactions; nothing already posted ever changes."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from ledgerline import errors
from ledgerline.audit import Actor
from ledgerline.db import Cursor
from ledgerline.ids import object_id
from ledgerline.ledger import sql
from ledgerline.ledger.accounts import system_account
from ledgerline.ledger.model import Transaction
from ledgerline.ledger.postings import Leg, post_transaction


def reverse(cur: Cursor, transaction_id: UUID | str, *, reason: str, actor: Actor) -> Transaction:
    """Post the mirror image of a transaction (once); the original stays as it was."""
    reason = _reason(reason)
    tid = object_id(transaction_id, "transaction")
    row = sql.call(
        cur,
        "SELECT ledger_reverse(p_transaction => %(transaction)s, p_reason => %(reason)s, p_actor => %(actor)s,"
        " p_audit => %(audit)s) AS t",
        {
            "transaction": tid,
            "reason": reason,
            "actor": sql.actor_json(actor),
            "audit": sql.audit_rows(
                sql.audit_row(
                    "ledger.transaction.reversed",
                    resource_type="transaction",
                    resource_id=str(tid),
                    ledger=True,
                    metadata={"reason": reason},
                )
            ),
        },
    )
    return Transaction.from_json(row["t"])


def adjust(
    cur: Cursor,
    *,
    account_id: UUID,
    amount: Decimal,
    currency: str,
    direction: str,
    reason: str,
    actor: Actor,
) -> Transaction:
    """A manual movement between an account and its currency's adjustments account:
    ``credit`` adds to the account, ``debit`` takes from it (never below zero)."""
    reason = _reason(reason)
    if direction not in ("credit", "debit"):
        raise errors.ValidationFailed(
            "direction must be credit or debit", errors=[errors.FieldError("direction", "use credit or debit")]
        )
    if amount <= 0:
        raise errors.ValidationFailed("amount must be greater than zero")
    contra = system_account(cur, "adjustments", currency).id
    signed = amount if direction == "credit" else -amount
    return post_transaction(
        cur,
        kind="adjustment",
        legs=[Leg(account_id, signed, currency), Leg(contra, -signed, currency)],
        actor=actor,
        audit=[
            sql.audit_row(
                "ledger.adjustment.posted",
                resource_type="transaction",
                ledger=True,
                metadata={"reason": reason, "direction": direction, "account_id": str(account_id)},
            )
        ],
        description=reason,
        metadata={"reason": reason, "direction": direction},
        allow_frozen=True,
    )


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not 3 <= len(reason) <= 500:
        raise errors.ValidationFailed(
            "a reason is required", errors=[errors.FieldError("reason", "say why, in 3 to 500 characters")]
        )
    return reason
