"""The ledger's invariants, re-checked from the data (the ``ledger-check`` job and
``GET /v1/admin/ledger/check``), and the repair for cached balances.

The database enforces each invariant as rows are written; this check is the independent
second opinion over everything already written, and says precisely what is wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledgerline.db import Cursor

MAX_FINDINGS_PER_CHECK = 100


@dataclass(frozen=True)
class Finding:
    invariant: str  # a stable name, e.g. "currency_sums_to_zero"
    detail: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# name, query (each row is one finding), message template.
_CHECKS: tuple[tuple[str, str, str], ...] = (
    (
        "currency_sums_to_zero",
        "SELECT currency, sum(amount) AS total FROM entries GROUP BY currency HAVING sum(amount) <> 0",
        "{currency} entries sum to {total}, not zero",
    ),
    (
        "transaction_balanced",
        """
        SELECT transaction_id, currency, sum(amount) AS total, count(*) AS entries
          FROM entries GROUP BY transaction_id, currency HAVING sum(amount) <> 0
        UNION ALL
        SELECT t.id, NULL, 0, 0 FROM transactions t WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.transaction_id = t.id)
        """,
        "transaction {transaction_id} {currency} entries sum to {total} ({entries} entries)",
    ),
    (
        "entry_currency_matches_account",
        """
        SELECT e.id AS entry_id, e.account_id, e.currency AS entry_currency, a.currency AS account_currency
          FROM entries e LEFT JOIN accounts a ON a.id = e.account_id
         WHERE a.id IS NULL OR a.currency <> e.currency
        """,
        "entry {entry_id} is in {entry_currency} but account {account_id} is in {account_currency}",
    ),
    (
        "cached_balance_matches_entries",
        """
        SELECT b.account_id, b.posted + coalesce(d.total, 0) AS cached, coalesce(e.total, 0) AS entries
          FROM balances b
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM balance_deltas GROUP BY account_id) d
                 ON d.account_id = b.account_id
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM entries GROUP BY account_id) e
                 ON e.account_id = b.account_id
         WHERE b.posted + coalesce(d.total, 0) <> coalesce(e.total, 0)
        """,
        "account {account_id}: cached balance {cached} but its entries sum to {entries}",
    ),
    (
        "balance_after_matches_cached",
        """
        SELECT b.account_id, b.posted, last.balance_after
          FROM balances b
          JOIN LATERAL (SELECT e.balance_after FROM entries e WHERE e.account_id = b.account_id
                         ORDER BY e.created_at DESC, e.account_version DESC LIMIT 1) last ON true
         WHERE NOT b.hot AND last.balance_after IS DISTINCT FROM b.posted
        """,
        "account {account_id}: posted {posted} but its last entry's balance_after is {balance_after}",
    ),
    (
        "hot_accounts_only_deltas",
        """
        SELECT d.account_id, count(*) AS deltas FROM balance_deltas d JOIN balances b ON b.account_id = d.account_id
         WHERE NOT b.hot GROUP BY d.account_id
        """,
        "account {account_id} is not hot but has {deltas} unfolded deltas",
    ),
    (
        "balance_status_matches_account",
        """
        SELECT a.id AS account_id, a.status AS account_status, b.status AS balance_status
          FROM accounts a JOIN balances b ON b.account_id = a.id WHERE a.status <> b.status
        """,
        "account {account_id} is {account_status} but its balance row says {balance_status}",
    ),
    (
        "non_negative_accounts",
        """
        SELECT b.account_id, b.posted, b.held, b.posted - b.held AS available
          FROM balances b WHERE NOT b.may_go_negative AND b.posted - b.held < 0
        """,
        "account {account_id} may not go negative but has {available} available ({posted} posted, {held} held)",
    ),
    (
        "held_matches_active_holds",
        """
        SELECT b.account_id, b.held, coalesce(h.total, 0) AS active_holds
          FROM balances b
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM holds WHERE status = 'active' GROUP BY account_id) h
                 ON h.account_id = b.account_id
         WHERE b.held <> coalesce(h.total, 0)
        """,
        "account {account_id}: held {held} but its active holds sum to {active_holds}",
    ),
    (
        "holds_resolved_consistently",
        """
        SELECT h.id AS hold_id, h.status, h.captured_amount, h.transaction_id
          FROM holds h
         WHERE (h.status = 'posted' AND NOT EXISTS (
                  SELECT 1 FROM entries e WHERE e.transaction_id = h.transaction_id
                     AND e.account_id = h.account_id AND e.amount = -h.captured_amount))
            OR (h.status <> 'posted' AND (h.transaction_id IS NOT NULL OR h.captured_amount IS NOT NULL))
            OR (h.status = 'active') <> (h.resolved_at IS NULL)
        """,
        "hold {hold_id} is {status} but its capture ({captured_amount}, transaction {transaction_id}) does not match",
    ),
    (
        "reversals_mirror_originals",
        """
        SELECT r.id AS reversal_id, r.reverses AS original_id
          FROM transactions r
         WHERE r.reverses IS NOT NULL AND EXISTS (
               (SELECT account_id, amount FROM entries WHERE transaction_id = r.id
                EXCEPT ALL SELECT account_id, -amount FROM entries WHERE transaction_id = r.reverses)
               UNION ALL
               (SELECT account_id, -amount FROM entries WHERE transaction_id = r.reverses
                EXCEPT ALL SELECT account_id, amount FROM entries WHERE transaction_id = r.id))
        """,
        "reversal {reversal_id} does not mirror transaction {original_id}",
    ),
)


def check_invariants(cur: Cursor) -> list[Finding]:
    """Every invariant over the whole ledger; an empty list means the books are right.

    Each check is one statement, so it reads one snapshot: a posting commits its entries,
    balances and holds together, and cannot look like a discrepancy halfway.
    """
    findings: list[Finding] = []
    for name, query, message in _CHECKS:
        cur.execute(f"SELECT * FROM ({query}) findings LIMIT {MAX_FINDINGS_PER_CHECK}")
        for row in cur.fetchall():
            data = {k: _plain(v) for k, v in dict(row).items()}
            findings.append(Finding(name, message.format(**data), data))
    return findings


def rebuild_balances(cur: Cursor) -> int:
    """Recompute every cached balance from entries and active holds; return how many were wrong."""
    cur.execute("SELECT ledger_rebuild_balances() AS n")
    return int(cur.fetchone()["n"])


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    return value
