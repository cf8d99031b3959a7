-- Reverse a transaction: a new transaction with every entry negated, recorded as
-- reversing the original (which stays untouched). A transaction is reversed once, and a
-- reversal is not itself reversed. The raising form the Python domain calls
-- (ledgerline.ledger.corrections.reverse) over its core, ledger_reversal: the reversal,
-- or the refusal raised (a withdrawal's transaction too: withdrawal_owns). p_audit is an
-- array of audit rows; its first is the one written.
CREATE OR REPLACE FUNCTION ledger_reverse(p_transaction uuid, p_reason text, p_actor jsonb, p_audit jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v jsonb := coalesce(withdrawal_owns(p_transaction => p_transaction),
                      ledger_reversal(p_transaction => p_transaction, p_reason => p_reason, p_actor => p_actor,
                                      p_audit => p_audit->0));
BEGIN
  IF v ? 'refusal' THEN
    PERFORM ledger_raise(v->'refusal');
  END IF;
  RETURN v->'transaction';
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_reverse(uuid, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_reverse(uuid, text, jsonb, jsonb) TO ledgerline_app;
