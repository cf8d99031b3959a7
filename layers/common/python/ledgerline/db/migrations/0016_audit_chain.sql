-- The audit chain (issue 15): the audit shipper gives each committed audit_log row a
-- gap-free sequence number and links it to the previous one by hash, in its own tables
-- (audit_log stays append-only and untouched). Rows are chained in commit-safe order:
-- only rows whose transaction is older than the oldest one still running
-- (xid < pg_snapshot_xmin(pg_current_snapshot())), so a late commit is never skipped.
--
-- No foreign key to audit_log: its old monthly partitions are detached once shipped and
-- verified (retention), while the chain, a few hundred bytes a row, stays whole.
-- The application role only reads these tables; it writes them through the SECURITY
-- DEFINER routines audit_chain_extend and audit_chain_shipped (db/routines/).

CREATE TABLE audit_chain (
  seq          bigint PRIMARY KEY CHECK (seq > 0),
  audit_id     uuid NOT NULL UNIQUE,
  -- Where the row sits in commit-safe order (xid, occurred_at, id): the next batch starts
  -- after the last chained position.
  audit_xid    xid8 NOT NULL,
  occurred_at  timestamptz NOT NULL,
  batch        bigint NOT NULL,  -- the first seq of the batch that shipped it
  content_hash bytea NOT NULL CHECK (length(content_hash) = 32),
  prev_hash    bytea NOT NULL CHECK (length(prev_hash) = 32),
  chain_hash   bytea NOT NULL CHECK (length(chain_hash) = 32),
  -- sha256 of the row in PostgreSQL's own rendering (audit_chain_row_digest), taken with
  -- content_hash from the same row: `audit verify` re-takes it cheaply to find rows edited
  -- in the database since, and the batch's digest of them is in its signed checkpoint.
  row_digest   bytea NOT NULL CHECK (length(row_digest) = 32),
  -- The audit_log row version's xmin when it was chained: any later UPDATE, whoever makes
  -- it and with whatever triggers disabled, writes a new row version with another xmin,
  -- so verify re-digests only rows whose xmin moved (a restored dump moves them all).
  row_xmin     xid NOT NULL
);

-- One batch: chained in one transaction, then put to the bucket (objects + a signed
-- checkpoint), then marked shipped. A batch chained but not shipped (the shipper crashed
-- in between) is shipped again, whole, to the same keys, before anything new is chained.
CREATE TABLE audit_ship_batches (
  first_seq   bigint PRIMARY KEY,
  last_seq    bigint NOT NULL UNIQUE CHECK (last_seq >= first_seq),
  prev_hash   bytea NOT NULL,   -- the chain head before this batch
  head        bytea NOT NULL,   -- the chain hash of last_seq
  rows_digest bytea NOT NULL,   -- sha256 of the batch's row_digest values in seq order
  chained_at  timestamptz NOT NULL DEFAULT now(),
  shipped_at  timestamptz,
  objects     jsonb,            -- [{"key", "sha256", "version_id", "records"}] once shipped
  checkpoint  text              -- the checkpoint object's key once shipped
);
CREATE INDEX audit_ship_batches_pending ON audit_ship_batches (first_seq) WHERE shipped_at IS NULL;

-- The single row every shipper locks first, so two shippers never fork the chain.
CREATE TABLE audit_ship_state (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO audit_ship_state DEFAULT VALUES;

-- audit_chain is append-only for every role (its triggers: db/routines/audit_chain_guard.sql).
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_chain, audit_ship_batches, audit_ship_state FROM ledgerline_app;
GRANT SELECT ON audit_chain, audit_ship_batches, audit_ship_state TO ledgerline_app;
