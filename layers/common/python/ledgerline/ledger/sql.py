"""Calling the ledger's database functions, and what their errors mean to a caller.

The money functions (``ledgerline/db/routines/``, one file each) raise SQLSTATEs of class
``LL`` with a message written for the API caller; constraint violations that reach here are the database's
last line of defence and are mapped to the same domain errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg2
import psycopg2.extras

from ledgerline import audit, errors, jsonutil
from ledgerline.audit import Actor
from ledgerline.db import Cursor

_BY_SQLSTATE: dict[str, type[errors.DomainError]] = {
    "LLNF0": errors.NotFound,
    "LLIF0": errors.InsufficientFunds,
    "LLCF0": errors.Conflict,
    "LLST0": errors.InvalidStateTransition,
    "LLVL0": errors.ValidationFailed,
}

# Constraint names whose violation has a plain meaning for the caller.
_BY_CONSTRAINT: dict[str, tuple[type[errors.DomainError], str]] = {
    "balances_available_non_negative": (errors.InsufficientFunds, "the account does not have enough available funds"),
    "transactions_reverses_key": (errors.InvalidStateTransition, "this transaction was already reversed"),
    "transactions_reference_key": (errors.Conflict, "a transaction with this reference already exists"),
}


def translate(exc: psycopg2.Error) -> errors.DomainError | None:
    """The domain error a database error stands for, or None (a bug or an outage)."""
    code = exc.pgcode or ""
    diag = getattr(exc, "diag", None)
    message = (diag.message_primary if diag else None) or "the request could not be completed"
    if code in _BY_SQLSTATE:
        return _BY_SQLSTATE[code](message)
    constraint = diag.constraint_name if diag else None
    if constraint in _BY_CONSTRAINT:
        cls, text = _BY_CONSTRAINT[constraint]
        return cls(text)
    if code == "22003":  # numeric_value_out_of_range: a balance would leave NUMERIC(19,4)
        return errors.ValidationFailed("the amount is too large for this account's balance")
    return None


def call(cur: Cursor, query: str, params: Iterable[Any] | dict[str, Any]) -> dict[str, Any]:
    """Execute one statement that returns a row (a function call, INSERT ... RETURNING);
    return that row; raise refusals as domain errors."""
    try:
        cur.execute(query, params)
    except psycopg2.Error as exc:
        domain = translate(exc)
        if domain is None:
            raise
        raise domain from exc
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"expected a row from: {query.strip().splitlines()[0]}")
    return dict(row)


def jsonb(value: Any) -> psycopg2.extras.Json:
    """A query parameter sent as JSON (lists of dicts included), Decimal-exact."""
    return psycopg2.extras.Json(value, dumps=jsonutil.dumps)


def actor_json(actor: Actor) -> psycopg2.extras.Json:
    """The actor as the database functions take it (``p_actor``)."""
    metadata = {"request_id": actor.request_id} if actor.request_id else {}
    return jsonb(
        {
            "id": str(actor.id) if actor.id else None,
            "type": actor.type,
            "ip": actor.ip,
            "user_agent": actor.user_agent,
            "metadata": metadata,
        }
    )


def audit_row(action: str, **fields: Any) -> dict[str, Any]:
    """One audit row for a database function to write (an element of ``p_audit``)."""
    return {"category": audit.category_of(action), "action": action, **fields}


def audit_rows(*rows: dict[str, Any]) -> psycopg2.extras.Json:
    return jsonb(list(rows))
