-- The gateway accepted the payout of an approved withdrawal: record the provider's
-- payout id, once, with one audit row. Returns the withdrawal's status, so the worker
-- knows a withdrawal settled meanwhile (a fast webhook) and records nothing then.
CREATE OR REPLACE FUNCTION withdrawal_submitted(p_withdrawal uuid, p_payout_id text, p_actor jsonb) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  w withdrawals;
BEGIN
  SELECT * INTO w FROM withdrawals WHERE id = p_withdrawal FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'withdrawal % not found', p_withdrawal USING ERRCODE = 'LLNF0';
  END IF;
  IF w.status <> 'approved' OR w.submitted_at IS NOT NULL THEN
    RETURN w.status;  -- settled already, or a redelivered message: recorded once
  END IF;
  UPDATE withdrawals SET payout_id = p_payout_id, submitted_at = clock_timestamp() WHERE id = w.id RETURNING * INTO w;
  PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(jsonb_build_object(
            'action', 'withdrawal.payout_submitted', 'category', 'financial', 'resource_type', 'withdrawal',
            'resource_id', w.id, 'subjects', jsonb_build_array(w.user_id), 'after', jsonb_build_object('provider', w.provider, 'payout_id', p_payout_id))),
          p_resource_id => w.id::text, p_before => NULL, p_after => NULL);
  RETURN w.status;
END $$;

-- Callable by the application role (the payout worker) and the owner.
REVOKE ALL ON FUNCTION withdrawal_submitted(uuid, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION withdrawal_submitted(uuid, text, jsonb) TO ledgerline_app;
