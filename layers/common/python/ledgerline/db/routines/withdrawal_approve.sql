-- POST /v1/admin/withdrawals/{id}/approve, inside money_op: in one statement, approve the
-- withdrawal (withdrawal_approve_item: its hold pinned, held until the payout answers),
-- queue the payout (an outbox row for gateway-payouts, the id only) and write one audit
-- row; or say why not ({"refusal": <problem>}, nothing written).
--
-- The row lock serialises racing decisions: the second approval (or a rejection) finds
-- the state moved on and is refused (409). A hold that expired before approval is 409 too.
CREATE OR REPLACE FUNCTION withdrawal_approve(p_withdrawal uuid, p_actor jsonb, p_audit jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  w      withdrawals;
  v_item jsonb;
BEGIN
  SELECT * INTO w FROM withdrawals WHERE id = p_withdrawal FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('withdrawal %s not found', p_withdrawal)));
  END IF;
  IF w.bulk_payout_id IS NOT NULL THEN  -- decided with its bulk payout only (its approvals: bulk_payout_approve)
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('withdrawal %s is an item of bulk payout %s: it is approved with it', p_withdrawal, w.bulk_payout_id)));
  END IF;
  IF w.status <> 'requested' THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('withdrawal %s is %s; only a requested withdrawal can be approved', p_withdrawal, w.status)));
  END IF;
  v_item := withdrawal_approve_item(w, p_actor, p_audit);
  IF v_item ? 'refusal' THEN
    RETURN v_item;
  END IF;
  INSERT INTO outbox (queue, payload)
  VALUES ('gateway-payouts', jsonb_build_object('type', 'withdrawal.approved', 'withdrawal_id', w.id));
  PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(v_item->'audit'),
                       p_resource_id => w.id::text, p_before => NULL, p_after => NULL);
  RETURN jsonb_build_object('withdrawal', v_item->'withdrawal');
END $$;

-- Callable by the application role (through money_call) and the owner, not by PUBLIC.
REVOKE ALL ON FUNCTION withdrawal_approve(uuid, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION withdrawal_approve(uuid, jsonb, jsonb) TO ledgerline_app;
