"""Posting balanced transactions of any number of legs: the one write path for money.

Every money movement (transfer, capture, adjustment, reversal, top-up, payout, escrow)
is a ``post_transaction`` call, which is one call of the database function
``ledger_post_legs``: it locks, checks, writes the transaction, its entries (the entry
trigger maintains the balances) and the audit rows in one round trip.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledgerline import errors, money
from ledgerline.audit import Actor
from ledgerline.db import Cursor
from ledgerline.ids import object_id
from ledgerline.ledger import sql
from ledgerline.ledger.model import Entry, Transaction

_LIMIT = Decimal(10) ** money.MAX_INTEGER_DIGITS


@dataclass(frozen=True)
class Leg:
    """One side of a transaction: a signed amount on an account (negative debits it)."""

    account_id: UUID
    amount: Decimal
    currency: str
    entry_type: str | None = None  # defaults to the transaction's kind
    counterpart_id: UUID | None = None  # defaults to the other leg of a two-leg transaction


def check_legs(legs: Sequence[Leg]) -> None:
    """Refuse, before touching the database, what it would refuse anyway."""
    if len(legs) < 2:
        raise errors.ValidationFailed("a transaction needs at least two legs")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for leg in legs:
        exponent = money.minor_units(leg.currency)
        if not isinstance(leg.amount, Decimal) or not leg.amount.is_finite() or leg.amount == 0:
            raise errors.ValidationFailed(f"leg amount {leg.amount!r} must be a non-zero, finite Decimal")
        if abs(leg.amount) >= _LIMIT:
            raise errors.ValidationFailed(f"amount {leg.amount} is too large")
        if leg.amount != leg.amount.quantize(Decimal(1).scaleb(-exponent)):
            raise errors.ValidationFailed(f"amount {leg.amount} has more decimal places than {leg.currency} allows")
        totals[leg.currency] += leg.amount
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if unbalanced:
        detail = ", ".join(f"{c} {t}" for c, t in sorted(unbalanced.items()))
        raise errors.ValidationFailed(f"the legs must sum to zero in each currency (they sum to {detail})")


def post_transaction(
    cur: Cursor,
    *,
    kind: str,
    legs: Sequence[Leg],
    actor: Actor,
    audit: Sequence[dict[str, Any]] = (),
    description: str | None = None,
    reference: str | None = None,
    metadata: dict[str, Any] | None = None,
    allow_frozen: bool = False,
    owner_id: UUID | None = None,
    credit_kinds: Sequence[str] | None = None,
    transaction_id: UUID | None = None,
) -> Transaction:
    """Post one balanced transaction and return it with its entries.

    ``owner_id``: every debited account must belong to this user (else not found).
    ``credit_kinds``: every credited account must be of one of these kinds (else not found).
    ``audit``: rows for the same transaction (``sql.audit_row``); ``ledger=True`` rows get
    the balances before/after and the entries as payloads.
    """
    query, params = _post_call(
        kind, legs, actor, audit, description, reference, metadata, allow_frozen, owner_id, credit_kinds, transaction_id
    )
    row = sql.call(cur, f"SELECT {query} AS t", params)
    return Transaction.from_json(row["t"])


def post_transaction_header(cur: Cursor, **kwargs: Any) -> tuple[UUID, Any]:
    """``post_transaction`` for callers that know the legs already: returns only the new
    transaction's id and time (the entries are not sent back and parsed)."""
    query, params = _post_call(**kwargs)
    row = sql.call(
        cur, f"SELECT (t->>'id')::uuid AS id, (t->>'created_at')::timestamptz AS created_at FROM {query} t", params
    )
    return row["id"], row["created_at"]


def _post_call(
    kind: str,
    legs: Sequence[Leg],
    actor: Actor,
    audit: Sequence[dict[str, Any]] = (),
    description: str | None = None,
    reference: str | None = None,
    metadata: dict[str, Any] | None = None,
    allow_frozen: bool = False,
    owner_id: UUID | None = None,
    credit_kinds: Sequence[str] | None = None,
    transaction_id: UUID | None = None,
) -> tuple[str, dict[str, Any]]:
    check_legs(legs)
    counterparts = [leg.counterpart_id for leg in legs]
    if len(legs) == 2:
        counterparts = [counterparts[0] or legs[1].account_id, counterparts[1] or legs[0].account_id]
    query = (
        "ledger_post_legs(p_kind => %(kind)s, p_accounts => %(accounts)s::uuid[],"
        " p_currencies => %(currencies)s::text[], p_amounts => %(amounts)s::numeric[],"
        " p_entry_types => %(entry_types)s::text[], p_counterparts => %(counterparts)s::uuid[],"
        " p_actor => %(actor)s, p_audit => %(audit)s, p_description => %(description)s,"
        " p_reference => %(reference)s, p_metadata => %(metadata)s, p_allow_frozen => %(allow_frozen)s,"
        " p_owner => %(owner)s, p_credit_kinds => %(credit_kinds)s::text[], p_id => %(id)s)"
    )
    params = {
        "kind": kind,
        "accounts": [leg.account_id for leg in legs],
        "currencies": [leg.currency for leg in legs],
        "amounts": [leg.amount for leg in legs],
        "entry_types": [leg.entry_type or kind for leg in legs],
        "counterparts": counterparts,
        "actor": sql.actor_json(actor),
        "audit": sql.audit_rows(*audit) if audit else None,
        "description": description,
        "reference": reference,
        "metadata": sql.jsonb(metadata) if metadata else None,
        "allow_frozen": allow_frozen,
        "owner": owner_id,
        "credit_kinds": list(credit_kinds) if credit_kinds is not None else None,
        "id": transaction_id,
    }
    return query, params


def get_transaction(cur: Cursor, transaction_id: UUID | str) -> Transaction:
    """A transaction with its entries and, if it was reversed, the reversing transaction's id."""
    tid = object_id(transaction_id, "transaction")
    cur.execute(
        """
        SELECT t.id, t.kind, t.status, t.description, t.reference, t.reverses, t.created_at, t.metadata,
               (SELECT r.id FROM transactions r WHERE r.reverses = t.id) AS reversed_by
          FROM transactions t WHERE t.id = %s
        """,
        (tid,),
    )
    t = cur.fetchone()
    if t is None:
        raise errors.NotFound(f"transaction {transaction_id} not found")
    cur.execute(
        """
        SELECT id, transaction_id, account_id, currency, amount, entry_type, counterpart_id, balance_after, created_at
          FROM entries WHERE transaction_id = %s ORDER BY created_at, id
        """,
        (tid,),
    )
    entries = tuple(Entry.from_row(r) for r in cur.fetchall())
    return Transaction(
        id=t["id"],
        kind=t["kind"],
        status=t["status"],
        description=t["description"],
        reference=t["reference"],
        reverses=t["reverses"],
        created_at=t["created_at"],
        entries=entries,
        metadata=t["metadata"],
        reversed_by=t["reversed_by"],
    )
