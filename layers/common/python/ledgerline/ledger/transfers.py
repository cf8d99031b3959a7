"""Transfers: money from one account to another, in one currency."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledgerline import audit, errors
from ledgerline.audit import Actor
from ledgerline.db import Cursor
from ledgerline.ledger import sql
from ledgerline.ledger.model import Transfer
from ledgerline.ledger.postings import Leg, get_transaction, post_transaction_header


def transfer(
    cur: Cursor,
    *,
    from_account_id: UUID,
    to_account_id: UUID,
    amount: Decimal,
    currency: str,
    actor: Actor,
    description: str | None = None,
    owner_id: UUID | None = None,
    credit_kinds: Sequence[str] | None = None,
    reference: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Transfer:
    """Move ``amount`` from one account to another, audited in one row.

    ``owner_id``: the debited account must belong to this user; ``credit_kinds``: the kinds
    of account that may receive it (a user may pay another user's wallet, not a system
    account). Refusals are domain errors; nothing is written then.
    """
    if from_account_id == to_account_id:
        raise errors.ValidationFailed(
            "from_account_id and to_account_id are the same account",
            errors=[errors.FieldError("to_account_id", "send money to a different account")],
        )
    if amount <= 0:
        raise errors.ValidationFailed("amount must be greater than zero")
    request = {
        "from_account_id": str(from_account_id),
        "to_account_id": str(to_account_id),
        "amount": str(amount),
        "currency": currency,
        "description": description,
    }
    transaction_id, created_at = post_transaction_header(
        cur,
        kind="transfer",
        legs=[Leg(from_account_id, -amount, currency), Leg(to_account_id, amount, currency)],
        actor=actor,
        audit=[
            sql.audit_row("transfer.completed", resource_type="transfer", ledger=True, metadata={"request": request})
        ],
        description=description,
        reference=reference,
        metadata=metadata,
        owner_id=owner_id,
        credit_kinds=credit_kinds,
    )
    return Transfer(transaction_id, from_account_id, to_account_id, amount, currency, description, created_at)


def record_failure(cur: Cursor, actor: Actor, request: dict[str, Any], error: errors.DomainError | None) -> None:
    """Audit a transfer that did not happen, in a transaction of its own (after the
    money's rollback), so the record survives: one row, what was asked and why not."""
    outcome = (
        {"status": error.status, "code": error.code, "detail": error.detail}
        if error
        else {"status": 500, "code": "internal_error"}
    )
    audit.record(cur, actor, "transfer.failed", "transfer", None, metadata={"request": request, "error": outcome})


def get_transfer(cur: Cursor, transfer_id: UUID | str, *, viewer_id: UUID | None = None) -> Transfer:
    """A transfer; with ``viewer_id``, only if that user owns its source or destination."""
    try:
        t = get_transaction(cur, transfer_id)
    except errors.NotFound:
        raise errors.NotFound(f"transfer {transfer_id} not found") from None
    if t.kind != "transfer":
        raise errors.NotFound(f"transfer {transfer_id} not found")
    if viewer_id is not None:
        cur.execute(
            "SELECT 1 FROM accounts WHERE id = ANY(%s::uuid[]) AND owner_id = %s",
            ([e.account_id for e in t.entries], viewer_id),
        )
        if cur.fetchone() is None:
            raise errors.NotFound(f"transfer {transfer_id} not found")
    return Transfer.from_transaction(t)
