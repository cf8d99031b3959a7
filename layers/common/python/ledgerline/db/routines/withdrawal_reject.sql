-- POST /v1/admin/withdrawals/{id}/reject, inside money_op: void the withdrawal's hold (the
-- amount is available again), mark it rejected with the reason, tell the user (an outbox
-- row for notifications) and write one audit row; or say why not (nothing written).
CREATE OR REPLACE FUNCTION withdrawal_reject(p_withdrawal uuid, p_reason text, p_actor jsonb, p_audit jsonb)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  w        withdrawals;
  v_before jsonb;
  v_void   jsonb;
BEGIN
  IF length(btrim(coalesce(p_reason, ''))) NOT BETWEEN 3 AND 500 THEN
    RETURN jsonb_build_object('refusal', api_invalid('reason', 'say why, in 3 to 500 characters'));
  END IF;
  SELECT * INTO w FROM withdrawals WHERE id = p_withdrawal FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('withdrawal %s not found', p_withdrawal)));
  END IF;
  IF w.bulk_payout_id IS NOT NULL THEN  -- decided with its bulk payout only (its approvals: bulk_payout_approve)
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('withdrawal %s is an item of bulk payout %s: it is rejected with it', p_withdrawal, w.bulk_payout_id)));
  END IF;
  IF w.status <> 'requested' THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('withdrawal %s is %s; only a requested withdrawal can be rejected', p_withdrawal, w.status)));
  END IF;
  v_before := withdrawal_json(w);
  -- An expired hold already released the money: the rejection only records the decision.
  IF EXISTS (SELECT 1 FROM holds WHERE id = w.hold_id AND status = 'active') THEN
    v_void := ledger_hold_release(p_hold => w.hold_id, p_actor => p_actor, p_reason => btrim(p_reason));
    IF v_void ? 'refusal' THEN
      RETURN v_void;
    END IF;
  END IF;
  UPDATE withdrawals SET status = 'rejected', reason = btrim(p_reason), decided_by = (p_actor->>'id')::uuid,
                         decided_at = clock_timestamp()
   WHERE id = w.id RETURNING * INTO w;
  INSERT INTO outbox (queue, payload)
  VALUES ('notifications', withdrawal_notice(w));
  PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(p_audit || jsonb_build_object(
            'resource_type', 'withdrawal', 'resource_id', w.id, 'subjects', jsonb_build_array(w.user_id),
            'before', jsonb_build_object('withdrawal', v_before),
            'after', jsonb_build_object('withdrawal', withdrawal_json(w)))),
          p_resource_id => w.id::text, p_before => NULL, p_after => NULL);
  RETURN jsonb_build_object('withdrawal', withdrawal_json(w));
END $$;

-- Callable by the application role (through money_call) and the owner, not by PUBLIC.
REVOKE ALL ON FUNCTION withdrawal_reject(uuid, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION withdrawal_reject(uuid, text, jsonb, jsonb) TO ledgerline_app;
