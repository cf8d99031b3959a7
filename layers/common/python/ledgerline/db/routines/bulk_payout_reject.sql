-- POST /v1/admin/payouts/bulk/{id}/reject, inside money_op: an administrator refuses a
-- bulk payout still waiting for approval. Every item's hold is voided (the money is
-- available again: an expired hold released it already), every item becomes a rejected
-- withdrawal with the reason (withdrawal_reject_item), and the bulk payout is rejected;
-- the merchant is told once (a notifications outbox row); one audit row (p_audit:
-- bulk_payout.rejected, with the count and the total released) plus one
-- withdrawal.rejected row per item. Refused: an unknown bulk payout (404), one already
-- decided (409 invalid_state_transition), no reason (422); nothing written then.
CREATE OR REPLACE FUNCTION bulk_payout_reject(p_bulk uuid, p_reason text, p_actor jsonb, p_audit jsonb)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  b        bulk_payouts;
  w        withdrawals;
  v_before jsonb;
  v_item   jsonb;
  v_rows   jsonb[] := '{}';
BEGIN
  IF length(btrim(coalesce(p_reason, ''))) NOT BETWEEN 3 AND 500 THEN
    RETURN jsonb_build_object('refusal', api_invalid('reason', 'say why, in 3 to 500 characters'));
  END IF;
  SELECT * INTO b FROM bulk_payouts WHERE id = p_bulk FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('bulk payout %s not found', p_bulk)));
  END IF;
  IF b.status <> 'pending_approval' THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('bulk payout %s is %s; only one pending approval can be rejected', p_bulk, b.status)));
  END IF;
  v_before := bulk_payout_json(b) - 'items';
  FOR w IN SELECT * FROM withdrawals WHERE bulk_payout_id = p_bulk AND status = 'requested'
            ORDER BY bulk_index FOR UPDATE LOOP
    v_item := withdrawal_reject_item(w, p_reason, p_actor, jsonb_build_object(
      'action', 'withdrawal.rejected', 'category', p_audit->>'category',
      'metadata', jsonb_build_object('bulk_payout_id', p_bulk, 'reason', btrim(p_reason))));
    IF v_item ? 'refusal' THEN  -- not expected (the rows are locked); refuse the whole rejection
      RAISE EXCEPTION 'item % of bulk payout %: %', w.bulk_index, p_bulk, v_item->'refusal'->>'detail'
        USING ERRCODE = 'LLST0';
    END IF;
    v_rows := array_append(v_rows, v_item->'audit');
  END LOOP;
  UPDATE bulk_payouts SET status = 'rejected', reason = btrim(p_reason), decided_at = clock_timestamp()
   WHERE id = p_bulk RETURNING * INTO b;
  -- One notice for the whole bulk payout (not one per item: a thousand mails for one decision).
  INSERT INTO outbox (queue, payload) VALUES ('notifications', jsonb_build_object(
    'type', 'bulk_payout.rejected', 'user_id', b.user_id, 'bulk_payout_id', b.id,
    'subject', 'Your bulk payout was not approved',
    'message', format('Your bulk payout %s of %s items, %s %s in all, was not approved; the money is available '
                      'in your wallet again. Reason: %s', b.id, b.item_count, api_money(b.total, b.currency)->>'amount',
                      b.currency, b.reason)));
  PERFORM ledger_audit(p_actor => p_actor, p_rows => to_jsonb(v_rows) || jsonb_build_array(p_audit || jsonb_build_object(
            'resource_type', 'bulk_payout', 'resource_id', p_bulk, 'subjects', jsonb_build_array(b.user_id),
            'metadata', jsonb_build_object('reason', btrim(p_reason), 'items_released', cardinality(v_rows)),
            'before', jsonb_build_object('bulk_payout', v_before),
            'after', jsonb_build_object('bulk_payout', bulk_payout_json(b) - 'items'))),
          p_resource_id => NULL, p_before => NULL, p_after => NULL);
  RETURN jsonb_build_object('bulk_payout', bulk_payout_json(b));
END $$;

REVOKE ALL ON FUNCTION bulk_payout_reject(uuid, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bulk_payout_reject(uuid, text, jsonb, jsonb) TO ledgerline_app;
