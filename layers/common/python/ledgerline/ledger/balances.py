"""Balances now and at a past instant, entry history, and folding hot accounts' deltas.

Reads never sum an account's history: a non-hot account's entries carry the balance
after them (one index probe for any instant); a hot account's current balance is its
folded balance plus the few deltas appended since the last fold.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledgerline import audit, errors, pagination
from ledgerline.audit import Actor
from ledgerline.db import Cursor
from ledgerline.ledger.accounts import get_account
from ledgerline.ledger.model import Account, Entry, money_json


def balance_at(cur: Cursor, account: Account, at: datetime) -> Decimal:
    """The account's posted balance at ``at`` (entries committed at or before it)."""
    if account.hot:
        # System accounts only: no balance_after to read (see DESIGN notes on hot accounts).
        cur.execute(
            "SELECT coalesce(sum(amount), 0) AS posted FROM entries WHERE account_id = %s AND created_at <= %s",
            (account.id, at),
        )
        return cur.fetchone()["posted"]
    cur.execute(
        """
        SELECT balance_after FROM entries WHERE account_id = %s AND created_at <= %s
         ORDER BY created_at DESC, account_version DESC LIMIT 1
        """,
        (account.id, at),
    )
    row = cur.fetchone()
    return row["balance_after"] if row else Decimal(0)


def query_balance(
    cur: Cursor, account_id: UUID | str, *, actor: Actor, at: datetime | None = None, owner_id: UUID | None = None
) -> dict[str, Any]:
    """The API's balance read (``GET /v1/accounts/{id}/balance?at=``), audited."""
    account = get_account(cur, account_id, owner_id=owner_id)
    if at is None:
        cur.execute("SELECT clock_timestamp() AS now")
        at = cur.fetchone()["now"]
        posted = account.balance.posted
    else:
        if at.tzinfo is None:
            raise errors.ValidationFailed(
                "at needs a time zone", errors=[errors.FieldError("at", "use RFC 3339 with Z or an offset")]
            )
        if at > datetime.now(UTC):
            raise errors.ValidationFailed(
                "at is in the future", errors=[errors.FieldError("at", "ask for now or a past instant")]
            )
        posted = balance_at(cur, account, at)
    result = {"account_id": account.id, "at": at, "posted": money_json(posted, account.currency)}
    audit.record(cur, actor, "ledger.balance.queried", "account", account.id, metadata={"at": at})
    return result


def list_entries(
    cur: Cursor,
    account_id: UUID | str,
    *,
    owner_id: UUID | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> tuple[list[Entry], str | None]:
    """The account's entries, newest first, a page at a time."""
    account = get_account(cur, account_id, owner_id=owner_id)
    limit = pagination.check_limit(limit)
    before = pagination.decode(cursor)
    columns = "id, transaction_id, account_id, currency, amount, entry_type, counterpart_id, balance_after, created_at"
    if before:
        cur.execute(
            f"""
            SELECT {columns} FROM entries
             WHERE account_id = %s AND (created_at, id) < (%s, %s)
             ORDER BY created_at DESC, id DESC LIMIT %s
            """,
            (account.id, before[0], before[1], limit + 1),
        )
    else:
        cur.execute(
            f"SELECT {columns} FROM entries WHERE account_id = %s ORDER BY created_at DESC, id DESC LIMIT %s",
            (account.id, limit + 1),
        )
    rows = [Entry.from_row(r) for r in cur.fetchall()]
    page = rows[:limit]
    next_cursor = pagination.encode(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return page, next_cursor


def fold(cur: Cursor) -> int:
    """Fold hot accounts' deltas into their cached balances; return how many were folded."""
    cur.execute("SELECT ledger_fold_balances() AS n")
    return int(cur.fetchone()["n"])
