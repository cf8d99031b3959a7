-- Reconciliation (issue 16): each day's gateway report compared with the ledger's
-- payments. A run streams the report into reconciliation_staging (COPY), then
-- reconcile_compare (routines/) finds the discrepancies in one set-based pass.
--
-- Re-running a day gives the same findings without duplicates: a finding is unique on
-- (provider, day, kind, reference) and a re-run only marks it seen again (its status, set
-- by an admin, stays). Two concurrent runs of one (provider, day) produce one set: a run
-- holds a transaction-scoped advisory lock on (provider, day) while it stages and compares
-- (ledgerline.reconciliation.store), so the second waits and then finds the same rows.

CREATE TABLE reconciliation_runs (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  provider           text NOT NULL CHECK (provider IN ('paystack', 'stripe', 'flutterwave')),
  day                date NOT NULL,  -- a UTC day
  status             text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  gateway_count      bigint CHECK (gateway_count >= 0),  -- report rows read
  ledger_count       bigint CHECK (ledger_count >= 0),  -- the ledger's payments of the window
  discrepancy_count  bigint CHECK (discrepancy_count >= 0),
  -- {"NGN": {"gateway": "150.00", "ledger": "150.00"}, ...}: succeeded money of the day.
  totals             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(totals) = 'object'),
  duration_ms        bigint CHECK (duration_ms >= 0),
  error              text CHECK (length(error) <= 500),
  requested_by       uuid REFERENCES users (id),  -- an admin; NULL for the schedule or the CLI
  created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at         timestamptz,
  finished_at        timestamptz
);
CREATE INDEX reconciliation_runs_recent ON reconciliation_runs (created_at DESC, id);
CREATE INDEX reconciliation_runs_day ON reconciliation_runs (provider, day);

CREATE TABLE reconciliation_discrepancies (
  id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  run_id                    uuid NOT NULL REFERENCES reconciliation_runs (id),  -- the run that first found it
  last_run_id               uuid NOT NULL REFERENCES reconciliation_runs (id),  -- the latest run that found it
  provider                  text NOT NULL,
  day                       date NOT NULL,
  kind                      text NOT NULL CHECK (kind IN (
    'MISSING_IN_LEDGER', 'MISSING_IN_GATEWAY', 'AMOUNT_MISMATCH', 'CURRENCY_MISMATCH',
    'STATUS_MISMATCH', 'DUPLICATE_IN_GATEWAY', 'FEE_MISMATCH')),
  reference                 text NOT NULL CHECK (length(reference) <= 200),
  payment_id                uuid REFERENCES payments (id),
  gateway_amount            numeric(19, 4),
  gateway_currency          text,
  gateway_status            text,
  gateway_fee               numeric(19, 4),
  expected_fee              numeric(19, 4),
  gateway_count             integer,  -- rows of this reference in the report
  ledger_amount             numeric(19, 4),
  ledger_currency           text,
  ledger_status             text,
  status                    text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'explained', 'resolved')),
  resolution_transaction_id uuid REFERENCES transactions (id),
  note                      text CHECK (length(note) <= 1000),
  created_at                timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at                timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT reconciliation_discrepancies_once UNIQUE (provider, day, kind, reference),
  CONSTRAINT reconciliation_discrepancies_resolved CHECK ((status = 'resolved') = (resolution_transaction_id IS NOT NULL))
);
CREATE INDEX reconciliation_discrepancies_run ON reconciliation_discrepancies (last_run_id, kind, reference);

-- The report being compared, per run; rows live only inside the run's transaction.
-- UNLOGGED: a copy of what the gateway holds, rebuilt by re-running, never worth a WAL write.
CREATE UNLOGGED TABLE reconciliation_staging (
  run_id       uuid NOT NULL,
  reference    text NOT NULL,
  provider_id  text NOT NULL,
  amount       numeric(19, 4) NOT NULL,
  currency     text NOT NULL,
  status       text NOT NULL,
  fee          numeric(19, 4),
  expected_fee numeric(19, 4),
  paid_at      timestamptz
);
CREATE INDEX reconciliation_staging_run ON reconciliation_staging (run_id, reference);

-- The window's ledger side is found by (provider, created_at).
CREATE INDEX payments_provider_created ON payments (provider, created_at);

REVOKE ALL ON reconciliation_runs, reconciliation_discrepancies, reconciliation_staging FROM ledgerline_app;
GRANT SELECT, INSERT ON reconciliation_runs TO ledgerline_app;
GRANT UPDATE (status, gateway_count, ledger_count, discrepancy_count, totals, duration_ms, error, started_at, finished_at)
  ON reconciliation_runs TO ledgerline_app;
-- Findings are written by reconcile_compare (SECURITY DEFINER); admins change their status.
GRANT SELECT ON reconciliation_discrepancies TO ledgerline_app;
GRANT UPDATE (status, resolution_transaction_id, note, updated_at) ON reconciliation_discrepancies TO ledgerline_app;
GRANT SELECT, INSERT, DELETE ON reconciliation_staging TO ledgerline_app;
