-- Incremental ledger invariant checks (issue 16). The old check scanned every table in
-- one transaction and cannot finish under the statement timeout on a real ledger. Now:
--
-- * an incremental check re-verifies only what was written since its checkpoint, the
--   horizon ``checked_below``: every transaction whose created_xid is below it has been
--   checked. Commit-safe like the audit shipper: a run advances it to
--   pg_snapshot_xmin(pg_current_snapshot()) only, below which every writer has ended, so
--   a transaction that commits late is never skipped;
-- * a full check walks the accounts and the transactions in bounded slices (by id), each
--   slice a short transaction of its own, resuming where the last run stopped;
-- * every finding is remembered (ledger_check_findings), so it is audited once
--   (ledger.imbalance_detected), not again every hour.

-- Finding the new transactions is one index range scan, whatever the ledger's size.
CREATE INDEX transactions_created_xid ON transactions (created_xid);

CREATE TABLE ledger_check_state (
  id               smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  -- Every transaction with created_xid below this has been checked incrementally. Starts
  -- at the migration's own xid: what was written before is the full check's to verify.
  checked_below    xid8 NOT NULL DEFAULT pg_current_xact_id(),
  incremental_at   timestamptz,
  -- The full check's place: the last account / transaction id it checked in this pass
  -- (NULL: the pass starts from the beginning).
  full_account_after     uuid,
  full_transaction_after uuid,
  full_pass_started_at   timestamptz,
  full_passes_completed  bigint NOT NULL DEFAULT 0,
  full_last_completed_at timestamptz
);
INSERT INTO ledger_check_state (id) VALUES (1);

CREATE TABLE ledger_check_findings (
  -- The invariant and what it names (account, transaction, entry, hold): one row per finding.
  key         text PRIMARY KEY,
  invariant   text NOT NULL,
  detail      text NOT NULL,
  data        jsonb NOT NULL,
  found_by    text NOT NULL CHECK (found_by IN ('incremental', 'full')),
  first_seen  timestamptz NOT NULL DEFAULT now(),
  last_seen   timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, UPDATE ON ledger_check_state TO ledgerline_app;
GRANT SELECT, INSERT, UPDATE ON ledger_check_findings TO ledgerline_app;
