-- Approve one requested withdrawal, locked by the caller (withdrawal_approve, or
-- bulk_payout_approve_items for each item of a bulk payout): pin its hold, so the money
-- stays held until the payout answers (a paid payout captures it, a failed one voids it:
-- withdrawal_settle), and mark it approved by the actor. Returns {"withdrawal": <its
-- JSON>, "audit": <its audit row: p_audit (action, category, metadata) with the
-- withdrawal before and after and the pinned hold>} for the caller to write, or a
-- refusal, nothing written: 403 for the requester's own withdrawal (two people for money
-- leaving, ASVS 2.3.5), 409 conflict for a wallet not active (a freeze stops the money a
-- pending withdrawal would take out), 409 for a hold resolved or due.
CREATE OR REPLACE FUNCTION withdrawal_approve_item(w withdrawals, p_actor jsonb, p_audit jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  v_before jsonb := withdrawal_json(w);
  v_status text := (SELECT a.status FROM accounts a WHERE a.id = w.account_id);
  v_hold   jsonb;
BEGIN
  IF w.user_id = (p_actor->>'id')::uuid THEN
    RETURN jsonb_build_object('refusal', api_problem('forbidden',
      format('withdrawal %s is your own: another administrator approves it', w.id)));
  END IF;
  IF v_status <> 'active' THEN
    RETURN jsonb_build_object('refusal', api_problem('conflict',
      format('account %s is %s: a withdrawal from it cannot be approved', w.account_id, v_status)));
  END IF;
  v_hold := ledger_hold_pin(w.hold_id);
  IF v_hold ? 'refusal' THEN
    RETURN v_hold;
  END IF;
  UPDATE withdrawals SET status = 'approved', decided_by = (p_actor->>'id')::uuid, decided_at = clock_timestamp()
   WHERE id = w.id RETURNING * INTO w;
  RETURN jsonb_build_object('withdrawal', withdrawal_json(w), 'audit', p_audit || jsonb_build_object(
    'resource_type', 'withdrawal', 'resource_id', w.id, 'subjects', jsonb_build_array(w.user_id),
    'before', jsonb_build_object('withdrawal', v_before),
    'after', jsonb_build_object('withdrawal', withdrawal_json(w), 'hold', v_hold->'hold')));
END $$;

-- Called only inside the SECURITY DEFINER withdrawal_approve and bulk_payout_approve.
REVOKE ALL ON FUNCTION withdrawal_approve_item(withdrawals, jsonb, jsonb) FROM PUBLIC;
