-- POST /v1/admin/withdrawals/{id}/approve, inside money_op: in one statement, capture the
-- withdrawal's hold into its currency's payout_clearing account, mark it approved, queue
-- the payout (an outbox row for gateway-payouts, the id only) and write one audit row;
-- or say why not ({"refusal": <problem>}, nothing written).
--
-- The money leaves the hold now, not when the payout answers: a hold expires (at most 30
-- days) and a payout may take longer. The row lock serialises racing decisions: the
-- second approval (or a rejection) finds the state moved on and is refused (409).
CREATE OR REPLACE FUNCTION withdrawal_approve(p_withdrawal uuid, p_actor jsonb, p_audit jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  w        withdrawals;
  v_before jsonb;
  v_post   jsonb;
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
  v_before := withdrawal_json(w);
  v_post := ledger_hold_post(
    p_hold => w.hold_id,
    p_to => (SELECT a.id FROM accounts a WHERE a.kind = 'payout_clearing' AND a.currency = w.currency AND a.owner_id IS NULL),
    p_amount => NULL, p_actor => p_actor, p_description => format('withdrawal %s', w.id));
  IF v_post ? 'refusal' THEN
    RETURN v_post;
  END IF;
  UPDATE withdrawals SET status = 'approved', capture_transaction_id = (v_post->'transaction'->>'id')::uuid,
                         decided_by = (p_actor->>'id')::uuid, decided_at = clock_timestamp()
   WHERE id = w.id RETURNING * INTO w;
  INSERT INTO outbox (queue, payload)
  VALUES ('gateway-payouts', jsonb_build_object('type', 'withdrawal.approved', 'withdrawal_id', w.id));
  PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(p_audit || jsonb_build_object(
            'resource_type', 'withdrawal', 'resource_id', w.id, 'subjects', jsonb_build_array(w.user_id),
            'before', jsonb_build_object('withdrawal', v_before),
            'after', jsonb_build_object('withdrawal', withdrawal_json(w), 'transaction', v_post->'transaction'))),
          p_resource_id => w.id::text, p_before => NULL, p_after => NULL);
  RETURN jsonb_build_object('withdrawal', withdrawal_json(w));
END $$;

-- Callable by the application role (through money_call) and the owner, not by PUBLIC.
REVOKE ALL ON FUNCTION withdrawal_approve(uuid, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION withdrawal_approve(uuid, jsonb, jsonb) TO ledgerline_app;
