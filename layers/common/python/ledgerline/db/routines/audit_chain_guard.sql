-- The audit chain is append-only for every role, the owner included: a chained row's
-- sequence number, position and hashes never change (the shipped objects carry them, and
-- `ledgerline audit verify` compares the two). The shipper only ever inserts.
CREATE OR REPLACE FUNCTION audit_chain_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'the chain only grows; a wrong link is found by audit verify, never edited';
END $$;

CREATE OR REPLACE TRIGGER audit_chain_immutable BEFORE UPDATE OR DELETE ON audit_chain
  FOR EACH ROW EXECUTE FUNCTION audit_chain_guard();
CREATE OR REPLACE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
  FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_guard();

REVOKE ALL ON FUNCTION audit_chain_guard() FROM PUBLIC;
