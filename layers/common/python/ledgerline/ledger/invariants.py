"""The ledger's invariants, re-checked from the data (the ``ledger-check`` job and
``GET /v1/admin/ledger/check``), and the repair for cached balances.

The database enforces each invariant as rows are written; this check is the independent
second opinion over everything already written, and says precisely what is wrong.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledgerline import audit
from ledgerline.db import Cursor, transaction

MAX_FINDINGS_PER_CHECK = 100


@dataclass(frozen=True)
class Finding:
    invariant: str  # a stable name, e.g. "currency_sums_to_zero"
    detail: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# A withdrawal's hold is resolved by the withdrawal alone (withdrawal_owns), in step with
# it: pinned while approved, captured by its payment, voided by its failure. Stated once,
# for the whole check and for the account slices.
_WITHDRAWAL_HOLD_FIELDS = "w.id AS withdrawal_id, w.status, h.status AS hold_status, isfinite(h.expires_at) AS expiring"
_WITHDRAWAL_HOLD_OUT_OF_STEP = """
  CASE
    WHEN w.capture_transaction_id IS NOT NULL  -- captured at approval (before schema 32)
      THEN h.status <> 'posted' OR h.transaction_id <> w.capture_transaction_id
    WHEN w.status = 'requested' THEN h.status NOT IN ('active', 'expired') OR NOT isfinite(h.expires_at)
    WHEN w.status = 'approved' THEN h.status <> 'active' OR isfinite(h.expires_at)
    WHEN w.status = 'paid' THEN h.status <> 'posted' OR h.transaction_id IS DISTINCT FROM w.settlement_transaction_id
    WHEN w.status = 'failed' THEN h.status <> 'voided'
    ELSE h.status NOT IN ('voided', 'expired')  -- rejected
  END
"""
_WITHDRAWAL_HOLD_MESSAGE = "withdrawal {withdrawal_id} is {status} but its hold is {hold_status} (expiring: {expiring})"

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
    (
        "withdrawal_hold_in_step",
        f"SELECT {_WITHDRAWAL_HOLD_FIELDS} FROM withdrawals w JOIN holds h ON h.id = w.hold_id"
        f" WHERE {_WITHDRAWAL_HOLD_OUT_OF_STEP}",
        _WITHDRAWAL_HOLD_MESSAGE,
    ),
    (
        # A settled escrow holds nothing and its account is closed (escrow_transition,
        # escrow_guard): one that is not has money stuck in it, or a way back in.
        "settled_escrow_empty_and_closed",
        """
        SELECT e.id AS escrow_id, e.status, a.status AS account_status, b.posted, b.held
          FROM escrows e JOIN accounts a ON a.id = e.account_id JOIN balances b ON b.account_id = e.account_id
         WHERE e.status IN ('RELEASED', 'REFUNDED', 'RESOLVED_RELEASED', 'RESOLVED_REFUNDED')
           AND (b.posted <> 0 OR b.held <> 0 OR a.status <> 'closed')
        """,
        "escrow {escrow_id} is {status} but its account is {account_status} with {posted} posted, {held} held",
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


# The incremental check --------------------------------------------------------------------
#
# Scope: the transactions written since the checkpoint (``created_xid >= checked_below``,
# one range scan of transactions_created_xid), their entries (entries_transaction), and
# the accounts those entries touched (primary keys and entries_account_version). Every
# query's cost follows the new rows, never the ledger's size.

_NEW = """
WITH new_tx AS MATERIALIZED (
  SELECT id, reverses FROM transactions WHERE created_xid >= %(since)s::xid8
), new_entries AS MATERIALIZED (
  SELECT e.* FROM new_tx t JOIN entries e ON e.transaction_id = t.id
), touched AS MATERIALIZED (
  SELECT DISTINCT account_id FROM new_entries
)
"""

# The full check's slices: the next accounts, and the next transactions, by id.
_ACCOUNT_SLICE = """
WITH touched AS MATERIALIZED (
  SELECT id AS account_id FROM accounts
   WHERE %(after)s::uuid IS NULL OR id > %(after)s::uuid ORDER BY id LIMIT %(limit)s
), new_entries AS MATERIALIZED (
  SELECT e.* FROM touched s JOIN entries e ON e.account_id = s.account_id
)
"""
_TRANSACTION_SLICE = """
WITH new_tx AS MATERIALIZED (
  SELECT id, reverses FROM transactions
   WHERE %(after)s::uuid IS NULL OR id > %(after)s::uuid ORDER BY id LIMIT %(limit)s
), new_entries AS MATERIALIZED (
  SELECT e.* FROM new_tx t JOIN entries e ON e.transaction_id = t.id
)
"""

# name, the fields naming what a finding is about (its identity, remembered), query over
# the scope's CTEs, message. Shared by the incremental check and the full check's slices.
_TRANSACTION_CHECKS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    (
        "transaction_balanced",
        ("transaction_id", "currency"),
        """
        SELECT e.transaction_id, e.currency, sum(e.amount) AS total, count(*) AS entries
          FROM new_entries e GROUP BY e.transaction_id, e.currency HAVING sum(e.amount) <> 0
        UNION ALL
        SELECT t.id, NULL, 0, 0 FROM new_tx t WHERE NOT EXISTS (SELECT 1 FROM new_entries e WHERE e.transaction_id = t.id)
        """,
        "transaction {transaction_id} {currency} entries sum to {total} ({entries} entries)",
    ),
    (
        "entry_currency_matches_account",
        ("entry_id",),
        """
        SELECT e.id AS entry_id, e.account_id, e.currency AS entry_currency, a.currency AS account_currency
          FROM new_entries e LEFT JOIN accounts a ON a.id = e.account_id
         WHERE a.id IS NULL OR a.currency <> e.currency
        """,
        "entry {entry_id} is in {entry_currency} but account {account_id} is in {account_currency}",
    ),
    (
        "reversals_mirror_originals",
        ("reversal_id",),
        """
        SELECT r.id AS reversal_id, r.reverses AS original_id
          FROM new_tx r
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

_ACCOUNT_CHECKS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    (
        # Each entry of a non-hot account follows the one before it in the account's
        # history: its balance_after is that one's plus its amount.
        "entry_follows_previous",
        ("entry_id",),
        """
        SELECT e.id AS entry_id, e.account_id, e.account_version, e.amount, e.balance_after,
               CASE WHEN e.lag_version = e.account_version - 1 THEN e.lag_balance
                    ELSE coalesce(p.balance_after, 0) END AS previous_balance
          FROM (SELECT e.id, e.account_id, e.account_version, e.amount, e.balance_after,
                       lag(e.balance_after) OVER w AS lag_balance, lag(e.account_version) OVER w AS lag_version
                  FROM new_entries e WHERE e.account_version IS NOT NULL
                WINDOW w AS (PARTITION BY e.account_id ORDER BY e.account_version)) e
          -- The entry before is usually in scope too (lag); only an account's first entry
          -- in scope needs a probe of entries_account_version.
          LEFT JOIN LATERAL (
                SELECT p.balance_after FROM entries p
                 WHERE e.lag_version IS DISTINCT FROM e.account_version - 1
                   AND p.account_id = e.account_id AND p.account_version IS NOT NULL
                   AND p.account_version < e.account_version
                 ORDER BY p.account_version DESC LIMIT 1) p ON true
         WHERE e.balance_after IS DISTINCT FROM
               CASE WHEN e.lag_version = e.account_version - 1 THEN e.lag_balance
                    ELSE coalesce(p.balance_after, 0) END + e.amount
        """,
        "entry {entry_id} (account {account_id}, version {account_version}): balance_after {balance_after}"
        " but the entry before leaves {previous_balance} and it moves {amount}",
    ),
    (
        "balance_after_matches_cached",
        ("account_id",),
        """
        SELECT b.account_id, b.posted, last.balance_after
          FROM touched s JOIN balances b ON b.account_id = s.account_id
          JOIN LATERAL (SELECT e.balance_after FROM entries e
                         WHERE e.account_id = b.account_id AND e.account_version IS NOT NULL
                         ORDER BY e.account_version DESC LIMIT 1) last ON true
         WHERE NOT b.hot AND last.balance_after IS DISTINCT FROM b.posted
        """,
        "account {account_id}: posted {posted} but its last entry's balance_after is {balance_after}",
    ),
    (
        "hot_accounts_only_deltas",
        ("account_id",),
        """
        SELECT d.account_id, count(*) AS deltas
          FROM touched s JOIN balances b ON b.account_id = s.account_id
          JOIN balance_deltas d ON d.account_id = b.account_id
         WHERE NOT b.hot GROUP BY d.account_id
        """,
        "account {account_id} is not hot but has {deltas} unfolded deltas",
    ),
    (
        "balance_status_matches_account",
        ("account_id",),
        """
        SELECT a.id AS account_id, a.status AS account_status, b.status AS balance_status
          FROM touched s JOIN accounts a ON a.id = s.account_id JOIN balances b ON b.account_id = a.id
         WHERE a.status <> b.status
        """,
        "account {account_id} is {account_status} but its balance row says {balance_status}",
    ),
    (
        "non_negative_accounts",
        ("account_id",),
        """
        SELECT b.account_id, b.posted, b.held, b.posted - b.held AS available
          FROM touched s JOIN balances b ON b.account_id = s.account_id
         WHERE NOT b.may_go_negative AND b.posted - b.held < 0
        """,
        "account {account_id} may not go negative but has {available} available ({posted} posted, {held} held)",
    ),
    (
        "held_matches_active_holds",
        ("account_id",),
        """
        SELECT b.account_id, b.held,
               coalesce((SELECT sum(h.amount) FROM holds h WHERE h.account_id = b.account_id AND h.status = 'active'),
                        0) AS active_holds
          FROM touched s JOIN balances b ON b.account_id = s.account_id
         WHERE b.held <> coalesce((SELECT sum(h.amount) FROM holds h
                                    WHERE h.account_id = b.account_id AND h.status = 'active'), 0)
        """,
        "account {account_id}: held {held} but its active holds sum to {active_holds}",
    ),
    (
        "settled_escrow_empty_and_closed",
        ("escrow_id",),
        """
        SELECT e.id AS escrow_id, e.status, a.status AS account_status, b.posted, b.held
          FROM touched s JOIN escrows e ON e.account_id = s.account_id
          JOIN accounts a ON a.id = e.account_id JOIN balances b ON b.account_id = e.account_id
         WHERE e.status IN ('RELEASED', 'REFUNDED', 'RESOLVED_RELEASED', 'RESOLVED_REFUNDED')
           AND (b.posted <> 0 OR b.held <> 0 OR a.status <> 'closed')
        """,
        "escrow {escrow_id} is {status} but its account is {account_status} with {posted} posted, {held} held",
    ),
)

# Only in the full check's account slices: they read an account's whole history (or, for
# withdrawals, what no entry marks: a voided hold posts nothing, so no new entry brings its
# account into the incremental check's scope).
_FULL_ACCOUNT_CHECKS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    (
        "withdrawal_hold_in_step",
        ("withdrawal_id",),
        f"SELECT {_WITHDRAWAL_HOLD_FIELDS} FROM touched s JOIN withdrawals w ON w.account_id = s.account_id"
        f" JOIN holds h ON h.id = w.hold_id WHERE {_WITHDRAWAL_HOLD_OUT_OF_STEP}",
        _WITHDRAWAL_HOLD_MESSAGE,
    ),
    (
        "cached_balance_matches_entries",
        ("account_id",),
        """
        SELECT b.account_id, b.posted + coalesce(d.total, 0) AS cached, coalesce(e.total, 0) AS entries
          FROM touched s JOIN balances b ON b.account_id = s.account_id
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM new_entries GROUP BY account_id) e
                 ON e.account_id = b.account_id
          LEFT JOIN LATERAL (SELECT sum(d.amount) AS total FROM balance_deltas d WHERE d.account_id = b.account_id) d
                 ON true
         WHERE b.posted + coalesce(d.total, 0) <> coalesce(e.total, 0)
        """,
        "account {account_id}: cached balance {cached} but its entries sum to {entries}",
    ),
    (
        "holds_resolved_consistently",
        ("hold_id",),
        """
        SELECT h.id AS hold_id, h.status, h.captured_amount, h.transaction_id
          FROM touched s JOIN holds h ON h.account_id = s.account_id
         WHERE (h.status = 'posted' AND NOT EXISTS (
                  SELECT 1 FROM entries e WHERE e.transaction_id = h.transaction_id
                     AND e.account_id = h.account_id AND e.amount = -h.captured_amount))
            OR (h.status <> 'posted' AND (h.transaction_id IS NOT NULL OR h.captured_amount IS NOT NULL))
            OR (h.status = 'active') <> (h.resolved_at IS NULL)
        """,
        "hold {hold_id} is {status} but its capture ({captured_amount}, transaction {transaction_id}) does not match",
    ),
)

# An account slice reads its accounts' whole histories: a slice of 500 wallets of 5,000
# entries each took 3.8 s on the bench machine, near the 5 s statement timeout; 100 reads a fifth.
FULL_SLICE_ACCOUNTS = 100
FULL_SLICE_TRANSACTIONS = 2000


@dataclass(frozen=True)
class CheckRun:
    """One run of the ledger check: what it found, which findings are new (audited now),
    and where the full check stands."""

    findings: list[Finding]
    new: list[Finding]
    checked_below: str
    full_passes_completed: int
    full_account_after: str | None
    full_transaction_after: str | None

    def to_json(self) -> dict[str, Any]:
        return {"ok": not self.findings, "findings": [f.to_json() for f in self.findings]}


def check_incremental(cur: Cursor, actor: Any = None) -> CheckRun:
    """Check what was written since the checkpoint, remember and audit new findings, and
    move the checkpoint to the commit-safe horizon. One short REPEATABLE READ transaction:
    every query sees the same snapshot. Two runs at once: the state row is locked NOWAIT, so
    the later one gives way at once instead of queueing under the statement timeout; one
    that starts right after the other committed fails to serialize and is retried by
    ``transaction``, then finds nothing new."""
    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    cur.execute(
        "SELECT checked_below::text AS since, pg_snapshot_xmin(pg_current_snapshot())::text AS horizon"
        "  FROM ledger_check_state WHERE id = 1 FOR UPDATE NOWAIT"
    )
    state = cur.fetchone()
    params = {"since": state["since"]}
    findings = _run(cur, _NEW, _TRANSACTION_CHECKS + _ACCOUNT_CHECKS, params)
    new = _remember(cur, findings, "incremental", actor)
    cur.execute(
        "UPDATE ledger_check_state SET checked_below = greatest(checked_below, %(horizon)s::xid8), incremental_at = now()"
        " WHERE id = 1 RETURNING checked_below::text, full_passes_completed, full_account_after::text,"
        " full_transaction_after::text",
        {"horizon": state["horizon"]},
    )
    row = cur.fetchone()
    return CheckRun(
        findings,
        new,
        row["checked_below"],
        row["full_passes_completed"],
        row["full_account_after"],
        row["full_transaction_after"],
    )


def check_full_slice(
    cur: Cursor,
    actor: Any = None,
    *,
    accounts: int = FULL_SLICE_ACCOUNTS,
    transactions: int = FULL_SLICE_TRANSACTIONS,
) -> CheckRun:
    """The full check's next slice: the next ``accounts`` accounts (every invariant of
    each, over its whole history) and the next ``transactions`` transactions, by id, from
    where the last slice stopped. A pass is complete when both have wrapped around. Run
    each slice in its own transaction (it is bounded, so it fits the statement timeout)."""
    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    cur.execute(
        "SELECT full_account_after::text AS account_after, full_transaction_after::text AS transaction_after,"
        "       full_pass_started_at FROM ledger_check_state WHERE id = 1 FOR UPDATE NOWAIT"
    )
    state = cur.fetchone()
    a_params = {"after": state["account_after"], "limit": accounts}
    t_params = {"after": state["transaction_after"], "limit": transactions}
    findings = _run(cur, _ACCOUNT_SLICE, _ACCOUNT_CHECKS + _FULL_ACCOUNT_CHECKS, a_params)
    findings += _run(cur, _TRANSACTION_SLICE, _TRANSACTION_CHECKS, t_params)
    new = _remember(cur, findings, "full", actor)
    last_account = _last_id(cur, "accounts", a_params)
    last_transaction = _last_id(cur, "transactions", t_params)
    # A side that has wrapped around stays at the end (NULL after its last id would restart
    # it) until the other wraps too: then the pass is complete and both start again.
    account_done = last_account is None
    transaction_done = last_transaction is None
    cur.execute(
        """
        UPDATE ledger_check_state SET
               full_account_after = CASE WHEN %(both)s THEN NULL WHEN %(a_done)s THEN full_account_after
                                         ELSE %(a)s::uuid END,
               full_transaction_after = CASE WHEN %(both)s THEN NULL WHEN %(t_done)s THEN full_transaction_after
                                             ELSE %(t)s::uuid END,
               full_pass_started_at = CASE WHEN %(both)s THEN NULL ELSE coalesce(full_pass_started_at, now()) END,
               full_passes_completed = full_passes_completed + CASE WHEN %(both)s THEN 1 ELSE 0 END,
               full_last_completed_at = CASE WHEN %(both)s THEN now() ELSE full_last_completed_at END
         WHERE id = 1
        RETURNING checked_below::text, full_passes_completed, full_account_after::text, full_transaction_after::text
        """,
        {
            "both": account_done and transaction_done,
            "a_done": account_done,
            "t_done": transaction_done,
            "a": last_account,
            "t": last_transaction,
        },
    )
    row = cur.fetchone()
    return CheckRun(
        findings,
        new,
        row["checked_below"],
        row["full_passes_completed"],
        row["full_account_after"],
        row["full_transaction_after"],
    )


def _last_id(cur: Cursor, table: str, params: dict[str, Any]) -> str | None:
    """The last id of this slice; None when the slice was empty (that side has wrapped)."""
    cur.execute(
        f"SELECT max(id::text) AS last FROM (SELECT id FROM {table}"
        "  WHERE %(after)s::uuid IS NULL OR id > %(after)s::uuid ORDER BY id LIMIT %(limit)s) s",
        params,
    )
    last = cur.fetchone()["last"]
    return str(last) if last is not None else None


def _run(
    cur: Cursor, scope: str, checks: tuple[tuple[str, tuple[str, ...], str, str], ...], params: dict[str, Any]
) -> list[Finding]:
    """Every check of ``checks`` in one statement: the scope (new transactions, their
    entries, the accounts touched) is found once, not once per check."""
    parts = [
        f"(SELECT %(check_{i})s AS invariant, to_jsonb(f)::text AS data"
        f" FROM ({query}) f LIMIT {MAX_FINDINGS_PER_CHECK})"
        for i, (_name, _key, query, _message) in enumerate(checks)
    ]
    names = {f"check_{i}": name for i, (name, _key, _query, _message) in enumerate(checks)}
    messages = {name: message for name, _key, _query, message in checks}
    cur.execute(scope + "\nUNION ALL\n".join(parts), {**params, **names})
    findings: list[Finding] = []
    for row in cur.fetchall():
        # Amounts stay exact: JSON numbers are read as Decimal, then shown as text.
        data = {k: _plain(v) for k, v in json.loads(row["data"], parse_float=Decimal).items()}
        findings.append(Finding(row["invariant"], messages[row["invariant"]].format(**data), data))
    return findings


_KEYS = {name: key for name, key, _q, _m in _TRANSACTION_CHECKS + _ACCOUNT_CHECKS + _FULL_ACCOUNT_CHECKS}


def finding_key(finding: Finding) -> str:
    """What a finding is about, stably: the same broken thing found again is the same key."""
    fields = _KEYS.get(finding.invariant, tuple(sorted(finding.data)))
    return finding.invariant + ":" + ":".join(str(finding.data.get(f)) for f in fields)


def _remember(cur: Cursor, findings: list[Finding], found_by: str, actor: Any) -> list[Finding]:
    """Store the findings; audit each one seen for the first time as ledger.imbalance_detected,
    in this transaction (the books are never changed here: a repair is an operator's decision)."""
    new: list[Finding] = []
    for f in findings:
        cur.execute(
            "INSERT INTO ledger_check_findings (key, invariant, detail, data, found_by)"
            " VALUES (%s, %s, %s, %s::jsonb, %s)"
            " ON CONFLICT (key) DO UPDATE SET last_seen = now() RETURNING (xmax = 0) AS inserted",
            (finding_key(f), f.invariant, f.detail, json.dumps(f.data), found_by),
        )
        if cur.fetchone()["inserted"]:
            new.append(f)
            audit.record(
                cur,
                actor or audit.Actor.system("ledger-check"),
                "ledger.imbalance_detected",
                "ledger",
                None,
                metadata={"invariant": f.invariant, "detail": f.detail, "data": f.data, "found_by": found_by},
            )
    return new


def run_ledger_check(
    budget_seconds: float = 60.0,
    *,
    actor: audit.Actor | None = None,
    max_slices: int | None = None,
    clock: Any = time.monotonic,
) -> CheckRun:
    """The ledger check as the hourly job and the admin endpoint run it: the incremental
    check, then slices of the full check, each its own short transaction, until the time
    budget is spent (at least one slice). Returns every finding of this run."""
    started = clock()
    findings: list[Finding] = []
    new: list[Finding] = []
    run = _unless_busy(lambda cur: check_incremental(cur, actor))
    if run is not None:
        findings += run.findings
        new += run.new
    slices = 0
    while max_slices is None or slices < max_slices:
        sliced = _unless_busy(lambda cur: check_full_slice(cur, actor))
        if sliced is None:
            break  # another check holds the full check's place: it goes on from there
        run = sliced
        findings += run.findings
        new += run.new
        slices += 1
        if clock() - started >= budget_seconds or (
            run.full_account_after is None and run.full_transaction_after is None
        ):  # the budget is spent, or a pass has just completed: the next run goes on
            break
    if run is None:  # another check was running throughout: say where it stands
        run = transaction(_state, read_only=True)
    return CheckRun(
        _unique(findings),
        new,
        run.checked_below,
        run.full_passes_completed,
        run.full_account_after,
        run.full_transaction_after,
    )


LOCK_NOT_AVAILABLE = "55P03"


def _unless_busy(work: Any) -> CheckRun | None:
    """Run ``work`` in its own transaction; None when another check holds the state row."""
    try:
        result: CheckRun = transaction(work)
    except Exception as exc:
        if getattr(exc, "pgcode", None) == LOCK_NOT_AVAILABLE:
            return None
        raise
    return result


def _state(cur: Cursor) -> CheckRun:
    cur.execute(
        "SELECT checked_below::text, full_passes_completed, full_account_after::text, full_transaction_after::text"
        "  FROM ledger_check_state WHERE id = 1"
    )
    row = cur.fetchone()
    return CheckRun(
        [], [], row["checked_below"], row["full_passes_completed"], row["full_account_after"],
        row["full_transaction_after"],
    )  # fmt: skip


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(finding_key(f), f)
    return list(seen.values())


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
