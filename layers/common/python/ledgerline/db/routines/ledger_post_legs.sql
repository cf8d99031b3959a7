-- The raising form of ledger_post that the Python domain calls
-- (ledgerline.ledger.postings): the posted transaction, or the refusal raised
-- (ledger_raise: SQLSTATEs of class LL). Each leg is an account, a currency, an amount
-- (negative: a debit), an entry type and a counterpart (or null); p_id names the
-- transaction in advance (else a new id).
--
-- p_audit is an array of audit rows (see ledger_audit): the one with "ledger": true is
-- ledger_post's own audit row (balances and entries), the others describe the same
-- transaction. p_owner and p_credit_kinds are ledger_post's.
--
-- plan_cache_mode = force_generic_plan, as ledger_post's (see there).
CREATE OR REPLACE FUNCTION ledger_post_legs(
  p_kind text, p_accounts uuid[], p_currencies text[], p_amounts numeric[], p_entry_types text[],
  p_counterparts uuid[], p_actor jsonb, p_audit jsonb DEFAULT NULL, p_description text DEFAULT NULL,
  p_reference text DEFAULT NULL, p_metadata jsonb DEFAULT NULL, p_reverses uuid DEFAULT NULL,
  p_allow_frozen boolean DEFAULT false, p_owner uuid DEFAULT NULL, p_credit_kinds text[] DEFAULT NULL,
  p_id uuid DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  v_result jsonb;
  v_audit  jsonb := NULL;
BEGIN
  SELECT a INTO v_audit FROM jsonb_array_elements(p_audit) a WHERE (a->>'ledger')::boolean LIMIT 1;
  v_result := ledger_post(p_kind => p_kind, p_accounts => p_accounts, p_currencies => p_currencies,
                          p_amounts => p_amounts, p_actor => p_actor, p_entry_types => p_entry_types,
                          p_counterparts => p_counterparts, p_audit => v_audit, p_description => p_description,
                          p_reference => p_reference, p_metadata => p_metadata, p_reverses => p_reverses,
                          p_allow_frozen => p_allow_frozen, p_owner => p_owner, p_credit_kinds => p_credit_kinds,
                          p_id => p_id);
  IF v_result ? 'refusal' THEN
    PERFORM ledger_raise(v_result->'refusal');
  END IF;
  -- Audit rows other than the ledger's one describe the same transaction.
  PERFORM ledger_audit(p_actor => p_actor,
                       p_rows => (SELECT jsonb_agg(a) FROM jsonb_array_elements(p_audit) a
                                   WHERE NOT coalesce((a->>'ledger')::boolean, false)),
                       p_resource_id => v_result->'transaction'->>'id', p_before => NULL, p_after => NULL);
  RETURN v_result->'transaction';
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_post_legs(text, uuid[], text[], numeric[], text[], uuid[], jsonb, jsonb, text, text,
                                        jsonb, uuid, boolean, uuid, text[], uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_post_legs(text, uuid[], text[], numeric[], text[], uuid[], jsonb, jsonb, text, text,
                                           jsonb, uuid, boolean, uuid, text[], uuid) TO ledgerline_app;
