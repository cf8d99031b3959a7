-- Approve every item of a bulk payout at once (its last approval, or its request when no
-- approval is needed): each item (a withdrawal) is approved with its hold pinned
-- (withdrawal_approve_item), one withdrawal.approved audit row each; the payouts are
-- queued with one gateway-payouts message for the whole bulk payout (its id only).
-- Raises (ledger_raise: 409 for an item whose hold can no longer be pinned, it expired, or
-- whose wallet is not active; 403 for the requester's own) and the caller's statement
-- refuses the whole approval, nothing half approved. Returns how many.
CREATE OR REPLACE FUNCTION bulk_payout_approve_items(p_bulk uuid, p_actor jsonb, p_category text) RETURNS integer
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  w       withdrawals;
  v_item  jsonb;
  v_rows  jsonb[] := '{}';
BEGIN
  FOR w IN SELECT * FROM withdrawals WHERE bulk_payout_id = p_bulk AND status = 'requested'
            ORDER BY bulk_index FOR UPDATE LOOP
    v_item := withdrawal_approve_item(w, p_actor, jsonb_build_object(
      'action', 'withdrawal.approved', 'category', p_category, 'metadata', jsonb_build_object('bulk_payout_id', p_bulk)));
    IF v_item ? 'refusal' THEN
      PERFORM ledger_raise(v_item->'refusal' || jsonb_build_object('detail',
        format('item %s of bulk payout %s: %s', w.bulk_index, p_bulk, v_item->'refusal'->>'detail')));
    END IF;
    v_rows := array_append(v_rows, v_item->'audit');
  END LOOP;
  IF cardinality(v_rows) > 0 THEN
    -- One message for the whole bulk payout: the worker pays its items through the
    -- gateway's bulk transfer API where it has one (ledgerline.payments.bulk_payouts).
    INSERT INTO outbox (queue, payload)
    VALUES ('gateway-payouts', jsonb_build_object('type', 'bulk_payout.approved', 'bulk_payout_id', p_bulk));
    PERFORM ledger_audit(p_actor => p_actor, p_rows => to_jsonb(v_rows), p_resource_id => NULL, p_before => NULL,
                         p_after => NULL);
  END IF;
  RETURN cardinality(v_rows);
END $$;

-- Called only inside the SECURITY DEFINER bulk_payout_request and bulk_payout_approve.
REVOKE ALL ON FUNCTION bulk_payout_approve_items(uuid, jsonb, text) FROM PUBLIC;
