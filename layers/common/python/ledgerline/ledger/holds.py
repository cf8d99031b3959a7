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
from ledgerline.ids import object_id
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
        SELECT ledger_hold_create(
          p_account => %(account)s, p_currency => %(currency)s, p_amount => %(amount)s,
          p_expires_at => clock_timestamp() + %(seconds)s * interval '1 second', p_actor => %(actor)s,
          p_audit => %(audit)s, p_owner => %(owner)s, p_description => %(description)s, p_metadata => %(metadata)s) AS h
        """,
        {
            "account": account_id,
            "currency": currency,
            "amount": amount,
            "seconds": seconds,
            "actor": sql.actor_json(actor),
            "audit": sql.audit_rows(sql.audit_row("hold.created", resource_type="hold")),
            "owner": owner_id,
            "description": description,
            "metadata": sql.jsonb(metadata) if metadata else None,
        },
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
    hid = object_id(hold_id, "hold")
    if amount is not None and amount <= 0:
        raise errors.ValidationFailed("amount must be greater than zero")
    row = sql.call(
        cur,
        "SELECT ledger_hold_capture(p_hold => %(hold)s, p_to => %(to)s, p_amount => %(amount)s, p_actor => %(actor)s,"
        " p_audit => %(audit)s, p_owner => %(owner)s, p_credit_kinds => %(credit_kinds)s::text[],"
        " p_description => %(description)s) AS h",
        {
            "hold": hid,
            "to": to_account_id,
            "amount": amount,
            "actor": sql.actor_json(actor),
            "audit": sql.audit_rows(sql.audit_row("hold.captured", resource_type="hold")),
            "owner": owner_id,
            "credit_kinds": list(credit_kinds) if credit_kinds is not None else None,
            "description": description,
        },
    )
    data = row["h"]
    return Hold.from_json(data), Transaction.from_json(data["transaction"])


def void_hold(cur: Cursor, hold_id: UUID | str, *, actor: Actor, owner_id: UUID | None = None) -> Hold:
    row = sql.call(
        cur,
        "SELECT ledger_hold_void(p_hold => %(hold)s, p_actor => %(actor)s, p_audit => %(audit)s, p_owner => %(owner)s) AS h",
        {
            "hold": object_id(hold_id, "hold"),
            "actor": sql.actor_json(actor),
            "audit": sql.audit_rows(sql.audit_row("hold.voided", resource_type="hold")),
            "owner": owner_id,
        },
    )
    return Hold.from_json(row["h"])


def expire_due(
    cur: Cursor, *, now: datetime | None = None, limit: int = EXPIRY_BATCH, actor: Actor | None = None
) -> int:
    """Expire active holds due at ``now`` (default: the database's clock); return how many."""
    row = sql.call(
        cur,
        "SELECT ledger_expire_holds(p_now => coalesce(%(now)s, clock_timestamp()), p_limit => %(limit)s,"
        " p_actor => %(actor)s, p_audit => %(audit)s) AS n",
        {
            "now": now,
            "limit": limit,
            "actor": sql.actor_json(actor or Actor.system("hold-expiry")),
            "audit": sql.audit_rows(sql.audit_row("hold.expired", resource_type="hold")),
        },
    )
    return int(row["n"])


def get_hold(cur: Cursor, hold_id: UUID | str, *, owner_id: UUID | None = None) -> Hold:
    hid = object_id(hold_id, "hold")
    cur.execute(
        """
        SELECT h.id, h.account_id, h.currency, h.amount, h.status, h.captured_amount, h.transaction_id,
               CASE WHEN isfinite(h.expires_at) THEN h.expires_at END AS expires_at, h.description, h.created_at,
               h.resolved_at, a.owner_id
          FROM holds h JOIN accounts a ON a.id = h.account_id WHERE h.id = %s
        """,
        (hid,),
    )
    row = cur.fetchone()
    if row is None or (owner_id is not None and row["owner_id"] != owner_id):
        raise errors.NotFound(f"hold {hold_id} not found")
    return Hold.from_row(row)
