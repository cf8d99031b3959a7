-- Pin an active hold: it no longer expires, and ends only when it is captured or voided.
-- A withdrawal's hold is pinned when the withdrawal is approved: the payout may answer
-- after the hold's 30 days, and until it answers the money must stay held (expired, it
-- would be spendable while the gateway may still pay it out). Returns {"hold": <as
-- ledger_hold_json shows it: expires_at null>}, or a refusal (409) for a hold that is
-- resolved, due, or pinned already; nothing written then.
CREATE OR REPLACE FUNCTION ledger_hold_pin(p_hold uuid) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h holds;
BEGIN
  SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('hold %s not found', p_hold)));
  END IF;
  IF h.status <> 'active' OR NOT isfinite(h.expires_at) OR clock_timestamp() >= h.expires_at THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('hold %s is %s; only an active hold not yet due can be pinned', p_hold,
             CASE WHEN h.status <> 'active' THEN h.status WHEN isfinite(h.expires_at) THEN 'due'
                  ELSE 'pinned already' END)));
  END IF;
  UPDATE holds SET expires_at = 'infinity' WHERE id = p_hold RETURNING * INTO h;
  RETURN jsonb_build_object('hold', ledger_hold_json(h));
END $$;

-- Called only inside the SECURITY DEFINER withdrawal routines.
REVOKE ALL ON FUNCTION ledger_hold_pin(uuid) FROM PUBLIC;
