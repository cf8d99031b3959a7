-- Capture (post) an active hold, in full or in part, to another account; the remainder
-- is released: a hold is captured once. The raising form the Python domain calls
-- (ledgerline.ledger.holds.capture_hold) over its core, ledger_hold_post: the hold as
-- ledger_hold_json shows it, with its "transaction", or the refusal raised (a withdrawal's
-- hold too: api_hold_target). The posting
-- runs for p_owner, so a foreign destination gets the same answers as a transfer to it.
-- p_audit is an array of audit rows; its first is the one written.
CREATE OR REPLACE FUNCTION ledger_hold_capture(
  p_hold uuid, p_to uuid, p_amount numeric, p_actor jsonb, p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL,
  p_credit_kinds text[] DEFAULT NULL, p_description text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v jsonb := api_hold_target(p_hold => p_hold, p_owner => p_owner);  -- not a withdrawal's
BEGIN
  IF NOT v ? 'refusal' THEN
    v := ledger_hold_post(p_hold => p_hold, p_to => p_to, p_amount => p_amount, p_actor => p_actor,
                          p_audit => p_audit->0, p_owner => p_owner, p_credit_kinds => p_credit_kinds,
                          p_description => p_description);
  END IF;
  IF v ? 'refusal' THEN
    PERFORM ledger_raise(v->'refusal');
  END IF;
  RETURN ledger_hold_json(jsonb_populate_record(NULL::holds, v->'hold')) || jsonb_build_object('transaction', v->'transaction');
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_hold_capture(uuid, uuid, numeric, jsonb, jsonb, uuid, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_hold_capture(uuid, uuid, numeric, jsonb, jsonb, uuid, text[],
                                              text) TO ledgerline_app;
