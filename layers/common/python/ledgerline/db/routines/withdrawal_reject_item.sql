-- Reject one requested withdrawal, locked by the caller (withdrawal_reject, or
-- bulk_payout_reject for each item): void its hold (the amount is available again; a
-- hold that expired released it already) and mark it rejected by the actor with the
-- reason. Returns {"withdrawal": <the row>, "audit": <its audit row: p_audit (action,
-- category, metadata) with the withdrawal before and after>} for the caller to write,
-- or a refusal (nothing written).
CREATE OR REPLACE FUNCTION withdrawal_reject_item(w withdrawals, p_reason text, p_actor jsonb, p_audit jsonb)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  v_before jsonb := withdrawal_json(w);
  v_void   jsonb;
BEGIN
  IF EXISTS (SELECT 1 FROM holds WHERE id = w.hold_id AND status = 'active') THEN
    v_void := ledger_hold_release(p_hold => w.hold_id, p_actor => p_actor, p_reason => btrim(p_reason));
    IF v_void ? 'refusal' THEN
      RETURN v_void;
    END IF;
  END IF;
  UPDATE withdrawals SET status = 'rejected', reason = btrim(p_reason), decided_by = (p_actor->>'id')::uuid,
                         decided_at = clock_timestamp()
   WHERE id = w.id RETURNING * INTO w;
  RETURN jsonb_build_object('withdrawal', to_jsonb(w), 'audit', p_audit || jsonb_build_object(
    'resource_type', 'withdrawal', 'resource_id', w.id, 'subjects', jsonb_build_array(w.user_id),
    'before', jsonb_build_object('withdrawal', v_before),
    'after', jsonb_build_object('withdrawal', withdrawal_json(w))));
END $$;

-- Called only inside the SECURITY DEFINER withdrawal_reject and bulk_payout_reject.
REVOKE ALL ON FUNCTION withdrawal_reject_item(withdrawals, text, jsonb, jsonb) FROM PUBLIC;
