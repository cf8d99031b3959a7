-- Approve every item of a bulk payout at once (its last approval, or its request when no
-- approval is needed): each item's hold is captured into the currency's payout_clearing
-- account, the item (a withdrawal) becomes approved, with one withdrawal.approved audit
-- row per item; the payouts are queued with one gateway-payouts message for the whole
-- bulk payout (its id only). Raises (LLST0) if an item's hold cannot be captured (expired): the caller's
-- statement refuses the whole approval, nothing half approved.
CREATE OR REPLACE FUNCTION bulk_payout_capture(p_bulk uuid, p_actor jsonb, p_category text) RETURNS integer
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  w        withdrawals;
  v_before jsonb;
  v_post   jsonb;
  v_rows   jsonb[] := '{}';
  v_count  integer := 0;
BEGIN
  FOR w IN SELECT * FROM withdrawals WHERE bulk_payout_id = p_bulk AND status = 'requested'
            ORDER BY bulk_index FOR UPDATE LOOP
    v_before := withdrawal_json(w);
    v_post := ledger_hold_post(
      p_hold => w.hold_id,
      p_to => (SELECT a.id FROM accounts a WHERE a.kind = 'payout_clearing' AND a.currency = w.currency
                 AND a.owner_id IS NULL),
      p_amount => NULL, p_actor => p_actor, p_description => format('withdrawal %s', w.id));
    IF v_post ? 'refusal' THEN
      RAISE EXCEPTION 'item % of bulk payout %: %', w.bulk_index, p_bulk, v_post->'refusal'->>'detail'
        USING ERRCODE = 'LLST0';
    END IF;
    UPDATE withdrawals SET status = 'approved', capture_transaction_id = (v_post->'transaction'->>'id')::uuid,
                           decided_by = (p_actor->>'id')::uuid, decided_at = clock_timestamp()
     WHERE id = w.id RETURNING * INTO w;
    v_rows := array_append(v_rows, jsonb_build_object(
      'action', 'withdrawal.approved', 'category', p_category, 'resource_type', 'withdrawal', 'resource_id', w.id,
      'subjects', jsonb_build_array(w.user_id), 'metadata', jsonb_build_object('bulk_payout_id', p_bulk),
      'before', jsonb_build_object('withdrawal', v_before),
      'after', jsonb_build_object('withdrawal', withdrawal_json(w), 'transaction', v_post->'transaction')));
    v_count := v_count + 1;
  END LOOP;
  IF v_count > 0 THEN
    -- One message for the whole bulk payout: the worker pays its items through the
    -- gateway's bulk transfer API where it has one (ledgerline.payments.bulk_payouts).
    INSERT INTO outbox (queue, payload)
    VALUES ('gateway-payouts', jsonb_build_object('type', 'bulk_payout.approved', 'bulk_payout_id', p_bulk));
    PERFORM ledger_audit(p_actor => p_actor, p_rows => to_jsonb(v_rows), p_resource_id => NULL, p_before => NULL,
                         p_after => NULL);
  END IF;
  RETURN v_count;
END $$;

-- Called only inside the SECURITY DEFINER bulk_payout_request and bulk_payout_approve.
REVOKE ALL ON FUNCTION bulk_payout_capture(uuid, jsonb, text) FROM PUBLIC;
