-- The mirror transaction of a posted one (once), or why not. A reversal is not reversed.
-- The mirror has every entry negated and records the transaction it reverses (which
-- stays untouched); transactions.reverses is UNIQUE, and ledger_transaction_balanced
-- checks at COMMIT that it mirrors the original exactly.
CREATE OR REPLACE FUNCTION ledger_reversal(p_transaction uuid, p_reason text, p_actor jsonb, p_audit jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  t transactions;
  v_by uuid;
  v_accounts uuid[];
  v_currencies text[];
  v_amounts numeric[];
  v_types text[];
  v_counterparts uuid[];
BEGIN
  SELECT * INTO t FROM transactions WHERE id = p_transaction;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('transaction %s not found', p_transaction)));
  END IF;
  IF t.kind = 'reversal' THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('transaction %s is a reversal; reversals are not reversed (post a new transaction instead)', p_transaction)));
  END IF;
  SELECT id INTO v_by FROM transactions WHERE reverses = p_transaction;
  IF FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('transaction %s was already reversed by %s', p_transaction, v_by)));
  END IF;
  SELECT array_agg(account_id ORDER BY created_at, id), array_agg(currency ORDER BY created_at, id),
         array_agg(-amount ORDER BY created_at, id), array_agg('reversal'::text ORDER BY created_at, id),
         array_agg(counterpart_id ORDER BY created_at, id)
    INTO v_accounts, v_currencies, v_amounts, v_types, v_counterparts
    FROM entries WHERE transaction_id = p_transaction;
  RETURN ledger_post(p_kind => 'reversal', p_accounts => v_accounts, p_currencies => v_currencies,
                     p_amounts => v_amounts, p_actor => p_actor, p_entry_types => v_types,
                     p_counterparts => v_counterparts, p_audit => p_audit, p_description => p_reason,
                     p_metadata => jsonb_build_object('reason', p_reason), p_reverses => p_transaction,
                     p_allow_frozen => true);
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_reversal(uuid, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_reversal(uuid, text, jsonb, jsonb) TO ledgerline_app;
