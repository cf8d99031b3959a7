"""GET /v1/activity: the caller's own audit events as plain sentences, newest first.

A user's events are the rows they did (``actor_id``) and the rows done to them
(``subject_ids``: a gateway crediting their wallet, another user's transfer to them, an
administrator's decision). The query reads, besides the row's id, time and action, only
``Facts`` (``sentences``): the movements of the reader's own accounts in the row's
entries, and the amount, reference or place of an object the reader owns, joined with
the owner in the join condition. Nothing else of a payload leaves this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledgerline import pagination
from ledgerline.activity.sentences import Facts, Money, render
from ledgerline.db import Cursor

CATEGORIES = ("auth", "financial", "invoices", "escrow", "admin")


@dataclass(frozen=True)
class ActivityItem:
    id: UUID
    at: datetime
    category: str
    action: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "category": self.category, "action": self.action, "message": self.message}


# The reader's own objects are joined on their owner as well as their id, so a row about
# someone else's payment, withdrawal, hold or session yields no fact of it.
_FEED = """
WITH mine AS (SELECT coalesce(array_agg(id::text), '{}') AS ids FROM accounts WHERE owner_id = %(me)s)
SELECT a.id, a.occurred_at AS created_at, a.category, a.action,
       a.actor_id IS NOT DISTINCT FROM %(me)s AS you,
       own.currency AS own_currency, own.credited, own.debited,
       coalesce(pay.amount, w.amount, h.amount) AS amount,
       coalesce(pay.currency, w.currency, h.currency) AS currency,
       pay.reference,
       -- A session's place; else, for the reader's own sign-in events, the place the login
       -- recorded (a login from a new country is a fact about the reader's own session).
       coalesce(s.city, CASE WHEN a.actor_id = %(me)s AND a.category = 'auth' THEN a.metadata->>'city' END) AS city,
       coalesce(s.country, CASE WHEN a.actor_id = %(me)s AND a.category = 'auth' THEN a.metadata->>'country' END)
         AS country,
       CASE WHEN a.actor_id IS NOT DISTINCT FROM %(me)s THEN a.metadata->'error'->>'code' END AS reason
  FROM audit_log a
 CROSS JOIN mine
 CROSS JOIN LATERAL (
   SELECT CASE WHEN a.resource_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
               THEN a.resource_id::uuid END AS rid,
          coalesce(a.payload_after->'entries', a.payload_after->'transaction'->'entries') AS entries
 ) r
  LEFT JOIN LATERAL (
    SELECT min(e->>'currency') AS currency,
           sum((e->>'amount')::numeric) FILTER (WHERE (e->>'amount')::numeric > 0) AS credited,
           -sum((e->>'amount')::numeric) FILTER (WHERE (e->>'amount')::numeric < 0) AS debited
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.entries) = 'array' THEN r.entries ELSE '[]' END) e
     WHERE e->>'account_id' = ANY (mine.ids)
  ) own ON true
  LEFT JOIN payments pay ON a.resource_type = 'payment' AND pay.id = r.rid AND pay.owner_id = %(me)s
  LEFT JOIN withdrawals w ON a.resource_type = 'withdrawal' AND w.id = r.rid AND w.user_id = %(me)s
  LEFT JOIN holds h ON a.resource_type = 'hold' AND h.id = r.rid AND h.account_id::text = ANY (mine.ids)
  LEFT JOIN sessions s ON a.resource_type = 'session' AND s.id = r.rid AND s.user_id = %(me)s
 WHERE (a.actor_id = %(me)s OR a.subject_ids @> ARRAY[%(me)s]::uuid[])
   AND (%(category)s::text IS NULL OR a.category = %(category)s::text)
   AND (%(after_at)s::timestamptz IS NULL OR (a.occurred_at, a.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY a.occurred_at DESC, a.id DESC
 LIMIT %(n)s
"""


def list_activity(
    cur: Cursor, user_id: UUID, *, category: str | None = None, limit: int | None = None, cursor: str | None = None
) -> tuple[list[ActivityItem], str | None]:
    n = pagination.check_limit(limit)
    after = pagination.decode(cursor)
    cur.execute(
        _FEED,
        {
            "me": user_id,
            "category": category,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "n": n + 1,
        },
    )
    rows, next_cursor = pagination.page(cur.fetchall(), n)
    return [_item(row) for row in rows], next_cursor


def facts_of(row: dict[str, Any]) -> Facts:
    def money(amount: Decimal | None, currency: str | None) -> Money | None:
        return Money(amount, currency) if amount is not None and currency else None

    place = ", ".join(p for p in (row["city"], row["country"]) if p) or None
    return Facts(
        you=bool(row["you"]),
        credited=money(row["credited"], row["own_currency"]),
        debited=money(row["debited"], row["own_currency"]),
        amount=money(row["amount"], row["currency"]),
        reference=row["reference"],
        place=place,
        reason=row["reason"],
    )


def _item(row: dict[str, Any]) -> ActivityItem:
    return ActivityItem(
        id=row["id"],
        at=row["created_at"],
        category=row["category"],
        action=row["action"],
        message=render(row["action"], facts_of(row)),
    )
