-- Void an active hold: its amount is available again, nothing moves. The raising form
-- the Python domain calls (ledgerline.ledger.holds.void_hold) over its core,
-- ledger_hold_release: the hold as ledger_hold_json shows it, or the refusal raised (a
-- withdrawal's hold too: api_hold_target).
-- p_audit is an array of audit rows; its first is the one written.
CREATE OR REPLACE FUNCTION ledger_hold_void(p_hold uuid, p_actor jsonb, p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v jsonb := api_hold_target(p_hold => p_hold, p_owner => p_owner);  -- not a withdrawal's
BEGIN
  IF NOT v ? 'refusal' THEN
    v := ledger_hold_release(p_hold => p_hold, p_actor => p_actor, p_audit => p_audit->0, p_owner => p_owner);
  END IF;
  IF v ? 'refusal' THEN
    PERFORM ledger_raise(v->'refusal');
  END IF;
  RETURN ledger_hold_json(jsonb_populate_record(NULL::holds, v->'hold'));
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_hold_void(uuid, jsonb, jsonb, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_hold_void(uuid, jsonb, jsonb, uuid) TO ledgerline_app;
