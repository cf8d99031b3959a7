-- POST /v1/admin/withdrawals/{id}/reject, inside money_op: reject the withdrawal
-- (withdrawal_reject_item: its hold voided, the amount available again), tell the user (an
-- outbox row for notifications) and write one audit row; or say why not (nothing written).
CREATE OR REPLACE FUNCTION withdrawal_reject(p_withdrawal uuid, p_reason text, p_actor jsonb, p_audit jsonb)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  w      withdrawals;
  v_item jsonb;
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
  v_item := withdrawal_reject_item(w, p_reason, p_actor, p_audit);
  IF v_item ? 'refusal' THEN
    RETURN v_item;
  END IF;
  w := jsonb_populate_record(NULL::withdrawals, v_item->'withdrawal');
  INSERT INTO outbox (queue, payload)
  VALUES ('notifications', withdrawal_notice(w));
  PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(v_item->'audit'),
                       p_resource_id => w.id::text, p_before => NULL, p_after => NULL);
  RETURN jsonb_build_object('withdrawal', withdrawal_json(w));
END $$;

-- Callable by the application role (through money_call) and the owner, not by PUBLIC.
REVOKE ALL ON FUNCTION withdrawal_reject(uuid, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION withdrawal_reject(uuid, text, jsonb, jsonb) TO ledgerline_app;
