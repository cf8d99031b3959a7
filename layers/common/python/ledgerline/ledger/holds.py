"""Holds (two-phase, pending money): place, capture in full or in part, void, expire.

A hold keeps an amount on its account but out of ``available``. It resolves once: it is
captured (posted: becomes a transaction, the remainder is released), voided, or it
expires (the ``hold-expiry`` job).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledgerline import errors
from ledgerline.audit import Actor
from ledgerline.db import Cursor
from ledgerline.ledger import sql
from ledgerline.ledger.model import Hold, Transaction

DEFAULT_EXPIRY_SECONDS = 7 * 24 * 3600
MAX_EXPIRY_SECONDS = 30 * 24 * 3600
EXPIRY_BATCH = 500


def create_hold(
    cur: Cursor,
    *,
    account_id: UUID,
    amount: Decimal,
    currency: str,
    actor: Actor,
    expires_in_seconds: int | None = None,
    owner_id: UUID | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Hold:
    seconds = DEFAULT_EXPIRY_SECONDS if expires_in_seconds is None else expires_in_seconds
    if not 1 <= seconds <= MAX_EXPIRY_SECONDS:
        raise errors.ValidationFailed(
            f"expires_in_seconds must be between 1 and {MAX_EXPIRY_SECONDS}",
            errors=[errors.FieldError("expires_in_seconds", f"use 1..{MAX_EXPIRY_SECONDS} (30 days)")],
        )
    if amount <= 0:
        raise errors.ValidationFailed("amount must be greater than zero")
    row = sql.call(
        cur,
        """
        SELECT ledger_hold_create(%s, %s, %s, clock_timestamp() + %s * interval '1 second', %s, %s, %s, %s, %s) AS h
        """,
        (
            account_id,
            currency,
            amount,
            seconds,
            sql.actor_json(actor),
            sql.audit_rows(sql.audit_row("hold.created", resource_type="hold")),
            owner_id,
            description,
            sql.jsonb(metadata) if metadata else None,
        ),
    )
    return Hold.from_json(row["h"])


def capture_hold(
    cur: Cursor,
    hold_id: UUID | str,
    *,
    to_account_id: UUID,
    actor: Actor,
    amount: Decimal | None = None,
    owner_id: UUID | None = None,
    credit_kinds: Sequence[str] | None = None,
    description: str | None = None,
) -> tuple[Hold, Transaction]:
    """Post ``amount`` (default: all) of an active hold to ``to_account_id``; release the rest."""
    hid = _uuid(hold_id)
    if amount is not None and amount <= 0:
        raise errors.ValidationFailed("amount must be greater than zero")
    row = sql.call(
        cur,
        "SELECT ledger_hold_capture(%s, %s, %s, %s, %s, %s, %s::text[], %s) AS h",
        (
            hid,
            to_account_id,
            amount,
            sql.actor_json(actor),
            sql.audit_rows(sql.audit_row("hold.captured", resource_type="hold")),
            owner_id,
            list(credit_kinds) if credit_kinds is not None else None,
            description,
        ),
    )
    data = row["h"]
    return Hold.from_json(data), Transaction.from_json(data["transaction"])


def void_hold(cur: Cursor, hold_id: UUID | str, *, actor: Actor, owner_id: UUID | None = None) -> Hold:
    row = sql.call(
        cur,
        "SELECT ledger_hold_void(%s, %s, %s, %s) AS h",
        (
            _uuid(hold_id),
            sql.actor_json(actor),
            sql.audit_rows(sql.audit_row("hold.voided", resource_type="hold")),
            owner_id,
        ),
    )
    return Hold.from_json(row["h"])


def expire_due(
    cur: Cursor, *, now: datetime | None = None, limit: int = EXPIRY_BATCH, actor: Actor | None = None
) -> int:
    """Expire active holds due at ``now`` (default: the database's clock); return how many."""
    row = sql.call(
        cur,
        "SELECT ledger_expire_holds(coalesce(%s, clock_timestamp()), %s, %s, %s) AS n",
        (
            now,
            limit,
            sql.actor_json(actor or Actor.system("hold-expiry")),
            sql.audit_rows(sql.audit_row("hold.expired", resource_type="hold")),
        ),
    )
    return int(row["n"])


def get_hold(cur: Cursor, hold_id: UUID | str, *, owner_id: UUID | None = None) -> Hold:
    hid = _uuid(hold_id)
    cur.execute(
        """
        SELECT h.id, h.account_id, h.currency, h.amount, h.status, h.captured_amount, h.transaction_id,
               h.expires_at, h.description, h.created_at, h.resolved_at, a.owner_id
          FROM holds h JOIN accounts a ON a.id = h.account_id WHERE h.id = %s
        """,
        (hid,),
    )
    row = cur.fetchone()
    if row is None or (owner_id is not None and row["owner_id"] != owner_id):
        raise errors.NotFound(f"hold {hold_id} not found")
    return Hold.from_row(row)


def _uuid(value: UUID | str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise errors.NotFound(f"hold {value} not found") from None
