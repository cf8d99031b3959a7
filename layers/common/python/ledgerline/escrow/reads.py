"""Reading escrows: one (its buyer, its seller, administrators and auditors; anyone else
is told it does not exist) and a caller's own, a page at a time.

``allowed_transitions`` is read from ``escrow_transitions`` for the viewer's party (buyer,
seller, or administrator), as ``escrow_transition`` decides: one source, the table. A
dispute is offered only within the window (``settings().dispute_window_days`` from
funding), as the transition itself checks.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledgerline import errors, pagination
from ledgerline.db import Cursor
from ledgerline.escrow.model import Escrow
from ledgerline.ids import object_id

# The viewer's party, then the edges from the escrow's status that party may take.
_SELECT = """
SELECT e.id, e.buyer_id, e.seller_id, e.status, e.amount, e.currency, e.account_id, e.created_at,
       escrow_json(e) AS body,
       escrow_allowed(e => e, p_window => make_interval(days => %(window)s),
                      p_party => CASE WHEN e.buyer_id = %(viewer)s THEN 'buyer' WHEN e.seller_id = %(viewer)s
                                      THEN 'seller' WHEN %(admin)s THEN 'admin' END) AS allowed
  FROM escrows e
"""


def _window() -> int:
    from ledgerline.config import settings

    return settings().dispute_window_days


def _escrow(row: dict[str, Any]) -> Escrow:
    return Escrow(
        id=row["id"],
        buyer_id=row["buyer_id"],
        seller_id=row["seller_id"],
        status=row["status"],
        amount=row["amount"],
        currency=row["currency"],
        account_id=row["account_id"],
        created_at=row["created_at"],
        allowed_transitions=tuple(row["allowed"]),
        body=dict(row["body"]),
    )


def get_escrow(cur: Cursor, escrow_id: str | UUID, *, viewer_id: UUID, sees_all: bool, admin: bool) -> Escrow:
    """The escrow, if ``viewer_id`` is its buyer or seller or ``sees_all`` (administrators,
    auditors); else not found. ``admin``: the viewer may resolve its dispute."""
    eid = object_id(escrow_id, "escrow")
    cur.execute(
        _SELECT + " WHERE e.id = %(id)s AND (%(all)s OR %(viewer)s IN (e.buyer_id, e.seller_id))",
        {"id": eid, "viewer": viewer_id, "all": sees_all, "admin": admin, "window": _window()},
    )
    row = cur.fetchone()
    if row is None:
        raise errors.NotFound(f"escrow {eid} not found")
    return _escrow(row)


def list_escrows(
    cur: Cursor, *, party_id: UUID, limit: int | None = None, cursor: str | None = None
) -> tuple[list[Escrow], str | None]:
    """The escrows ``party_id`` buys or sells in, oldest first, a page at a time."""
    limit = pagination.check_limit(limit)
    after = pagination.decode(cursor)
    params = {"viewer": party_id, "admin": False, "window": _window(), "limit": limit + 1}
    where = " WHERE (e.buyer_id = %(viewer)s OR e.seller_id = %(viewer)s)"  # a bitmap OR of both parties' indexes
    if after:
        params |= {"at": after[0], "after_id": after[1]}
        where += " AND (e.created_at, e.id) > (%(at)s, %(after_id)s)"
    cur.execute(_SELECT + where + " ORDER BY e.created_at, e.id LIMIT %(limit)s", params)
    rows, next_cursor = pagination.page(cur.fetchall(), limit)
    return [_escrow(r) for r in rows], next_cursor
