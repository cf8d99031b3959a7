"""Accounts: open, read, list, freeze/unfreeze/close; the per-currency system accounts."""

from __future__ import annotations

from uuid import UUID

from ledgerline import audit, errors, money, pagination
from ledgerline.audit import Actor
from ledgerline.db import Cursor
from ledgerline.ids import object_id
from ledgerline.ledger import sql
from ledgerline.ledger.model import SYSTEM_KINDS, Account

# posted includes a hot account's unfolded deltas: a read is exact without a lock.
_SELECT = """
    SELECT a.id, a.owner_id, a.kind, a.currency, a.name, a.status, a.may_go_negative, a.hot, a.created_at,
           b.posted + CASE WHEN b.hot THEN coalesce(
               (SELECT sum(d.amount) FROM balance_deltas d WHERE d.account_id = a.id), 0) ELSE 0 END AS posted,
           b.held
      FROM accounts a JOIN balances b ON b.account_id = a.id
"""

MAX_ACCOUNTS_PER_OWNER = 50


def open_account(
    cur: Cursor, *, owner_id: UUID, currency: str, actor: Actor, name: str | None = None, kind: str = "user_wallet"
) -> Account:
    """Open a wallet for ``owner_id`` in ``currency``. An escrow's account is opened with
    its escrow, ownerless (``escrow_open``): an owner could move its money."""
    money.check_currency(currency)
    if kind != "user_wallet":
        raise errors.ValidationFailed(f"kind {kind!r}: only wallets are opened this way")
    cur.execute("SELECT count(*) AS n FROM accounts WHERE owner_id = %s", (owner_id,))
    if cur.fetchone()["n"] >= MAX_ACCOUNTS_PER_OWNER:
        raise errors.Conflict(f"an owner may have at most {MAX_ACCOUNTS_PER_OWNER} accounts")
    row = sql.call(
        cur,
        "INSERT INTO accounts (owner_id, kind, currency, name) VALUES (%s, %s, %s, %s) RETURNING id",
        (owner_id, kind, currency, name or f"{currency} wallet"),
    )
    account = get_account(cur, row["id"])
    audit.record(cur, actor, "ledger.account.opened", "account", account.id, after=account.to_json())
    return account


def get_account(cur: Cursor, account_id: UUID | str, *, owner_id: UUID | None = None) -> Account:
    """One account; with ``owner_id``, only if it belongs to that owner (else not found)."""
    uid = object_id(account_id, "account")
    cur.execute(_SELECT + " WHERE a.id = %s", (uid,))
    row = cur.fetchone()
    if row is None or (owner_id is not None and row["owner_id"] != owner_id):
        raise errors.NotFound(f"account {account_id} not found")
    return Account.from_row(row)


def list_accounts(
    cur: Cursor, *, owner_id: UUID, limit: int | None = None, cursor: str | None = None
) -> tuple[list[Account], str | None]:
    """The owner's accounts, oldest first, a page at a time."""
    limit = pagination.check_limit(limit)
    after = pagination.decode(cursor)
    if after:
        cur.execute(
            _SELECT + " WHERE a.owner_id = %s AND (a.created_at, a.id) > (%s, %s) ORDER BY a.created_at, a.id LIMIT %s",
            (owner_id, after[0], after[1], limit + 1),
        )
    else:
        cur.execute(_SELECT + " WHERE a.owner_id = %s ORDER BY a.created_at, a.id LIMIT %s", (owner_id, limit + 1))
    rows = [Account.from_row(r) for r in cur.fetchall()]
    page = rows[:limit]
    next_cursor = pagination.encode(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return page, next_cursor


def system_account(cur: Cursor, kind: str, currency: str) -> Account:
    """The ledger's own account of ``kind`` in ``currency`` (created by the migration)."""
    if kind not in SYSTEM_KINDS:
        raise ValueError(f"{kind!r} is not a system account kind ({', '.join(SYSTEM_KINDS)})")
    money.check_currency(currency)
    cur.execute(_SELECT + " WHERE a.kind = %s AND a.currency = %s AND a.owner_id IS NULL", (kind, currency))
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"no {kind} system account for {currency}: is the ledger migration applied?")
    return Account.from_row(row)


_STATUS_ACTIONS = {
    "frozen": "admin.account.frozen",
    "active": "admin.account.unfrozen",
    "closed": "ledger.account.closed",
}


def set_status(cur: Cursor, account_id: UUID | str, status: str, *, actor: Actor, reason: str | None = None) -> Account:
    """Freeze (``frozen``), unfreeze (``active``) or close (``closed``, empty accounts only)."""
    uid = object_id(account_id, "account")
    sql.call(
        cur,
        "SELECT ledger_set_account_status(p_account => %(account)s, p_status => %(status)s, p_reason => %(reason)s,"
        " p_actor => %(actor)s, p_audit => %(audit)s) AS account",
        {
            "account": uid,
            "status": status,
            "reason": reason,
            "actor": sql.actor_json(actor),
            "audit": sql.audit_rows(sql.audit_row(_STATUS_ACTIONS[status], resource_type="account")),
        },
    )
    return get_account(cur, uid)


def freeze(cur: Cursor, account_id: UUID | str, *, actor: Actor, reason: str | None = None) -> Account:
    return set_status(cur, account_id, "frozen", actor=actor, reason=reason)


def unfreeze(cur: Cursor, account_id: UUID | str, *, actor: Actor, reason: str | None = None) -> Account:
    return set_status(cur, account_id, "active", actor=actor, reason=reason)


def close(cur: Cursor, account_id: UUID | str, *, actor: Actor, reason: str | None = None) -> Account:
    return set_status(cur, account_id, "closed", actor=actor, reason=reason)
