-- Append-only tables (invariant 1): rows are never updated or deleted and the table is
-- never truncated, by anyone, the owner included. The application role has no UPDATE,
-- DELETE or TRUNCATE on these tables either (REVOKE, in their migrations); these
-- triggers hold for every role. Corrections are new rows (a reversing transaction).
CREATE OR REPLACE FUNCTION forbid_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'corrections are new rows (a reversing transaction), never edits';
END $$;

-- The audit trail: one row per significant action, never edited.
CREATE OR REPLACE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

-- Amounts already written depend on a currency's minor units: never change or drop one.
CREATE OR REPLACE TRIGGER currencies_immutable BEFORE UPDATE OR DELETE ON currencies
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE OR REPLACE TRIGGER currencies_no_truncate BEFORE TRUNCATE ON currencies
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

-- Accounts are never deleted (and what an account is never changes: ledger_account_guard).
CREATE OR REPLACE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE OR REPLACE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

-- The ledger is append-only, for the owner too: transactions and entries.
CREATE OR REPLACE TRIGGER transactions_immutable BEFORE UPDATE OR DELETE ON transactions
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE OR REPLACE TRIGGER transactions_no_truncate BEFORE TRUNCATE ON transactions
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

CREATE OR REPLACE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON entries
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE OR REPLACE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

-- A hold resolves once (ledger_hold_apply) and is never deleted.
CREATE OR REPLACE TRIGGER holds_no_delete BEFORE DELETE ON holds
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE OR REPLACE TRIGGER holds_no_truncate BEFORE TRUNCATE ON holds
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

-- The escrow state machine is data, fixed by its migration (0021): nobody edits it.
CREATE OR REPLACE TRIGGER escrow_transitions_immutable BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE
  ON escrow_transitions FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

-- Escrows, their disputes and the evidence are what an auditor reads after the fact:
-- never deleted (their status moves only along escrow_transitions: escrow_guard).
CREATE OR REPLACE TRIGGER escrows_no_delete BEFORE DELETE ON escrows
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE OR REPLACE TRIGGER escrows_no_truncate BEFORE TRUNCATE ON escrows
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();
CREATE OR REPLACE TRIGGER disputes_no_delete BEFORE DELETE ON disputes
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE OR REPLACE TRIGGER disputes_no_truncate BEFORE TRUNCATE ON disputes
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();
CREATE OR REPLACE TRIGGER dispute_evidence_no_delete BEFORE DELETE ON dispute_evidence
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE OR REPLACE TRIGGER dispute_evidence_no_truncate BEFORE TRUNCATE ON dispute_evidence
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();
