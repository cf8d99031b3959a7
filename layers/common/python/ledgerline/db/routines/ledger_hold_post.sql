-- Capture (post) an active hold, in full or in part, to another account, or say why not.
-- The remainder is released: a hold is captured once. The posting runs for p_owner, so a
-- foreign destination gets the answers a transfer to it gets.
CREATE OR REPLACE FUNCTION ledger_hold_post(
  p_hold uuid, p_to uuid, p_amount numeric, p_actor jsonb, p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL,
  p_credit_kinds text[] DEFAULT NULL, p_description text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h        holds;
  v_amt    numeric;
  v_before jsonb;
  v_post   jsonb;
BEGIN
  SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
  IF NOT FOUND OR (p_owner IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM accounts WHERE id = h.account_id AND owner_id = p_owner)) THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('hold %s not found', p_hold)));
  END IF;
  IF h.status <> 'active' THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('hold %s is %s; only an active hold can be captured', p_hold, h.status)));
  END IF;
  IF clock_timestamp() >= h.expires_at THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('hold %s expired at %s; it can no longer be captured', p_hold, h.expires_at)));
  END IF;
  v_amt := coalesce(p_amount, h.amount);
  IF v_amt <= 0 OR v_amt > h.amount THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error',
      format('capture amount %s must be more than zero and at most the held %s', v_amt, h.amount)));
  END IF;
  IF p_to = h.account_id THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error',
      'a hold is captured to another account; void it to release it'));
  END IF;
  v_before := ledger_hold_json(h);
  v_post := ledger_post(
    p_kind => 'hold_capture', p_accounts => ARRAY[h.account_id, p_to], p_currencies => ARRAY[h.currency, h.currency],
    p_amounts => ARRAY[-v_amt, v_amt], p_actor => p_actor, p_description => coalesce(p_description, h.description),
    p_metadata => jsonb_build_object('hold_id', h.id), p_owner => p_owner, p_credit_kinds => p_credit_kinds,
    p_capture => jsonb_build_object('hold', h.id, 'amount', v_amt));
  IF v_post ? 'refusal' THEN
    RETURN v_post;
  END IF;
  SELECT * INTO h FROM holds WHERE id = p_hold;
  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(
      p_actor => p_actor, p_rows => jsonb_build_array(p_audit), p_resource_id => h.id::text,
      p_before => jsonb_build_object('hold', v_before),
      p_after => jsonb_build_object('hold', ledger_hold_json(h), 'transaction', v_post->'transaction'));
  END IF;
  RETURN jsonb_build_object('hold', to_jsonb(h), 'transaction', v_post->'transaction');
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_hold_post(uuid, uuid, numeric, jsonb, jsonb, uuid, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_hold_post(uuid, uuid, numeric, jsonb, jsonb, uuid, text[], text) TO ledgerline_app;
