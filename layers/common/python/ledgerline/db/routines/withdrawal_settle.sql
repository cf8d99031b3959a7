-- The payout of an approved withdrawal is over: settle it, once, whoever says so first
-- (the gateway's payout webhook, or the payout worker on a refusal or a final answer).
-- Its hold, pinned at approval (withdrawal_approve_item), is resolved:
--   succeeded: captured, wallet -> external_funding (the money has left the ledger; a
--              wallet frozen meanwhile does not unmake a payout made), paid;
--   failed:    voided (nothing was posted: the money is available again), failed.
-- A withdrawal approved before migration 0032 had its hold captured into payout_clearing
-- at approval (capture_transaction_id): it settles clearing -> external_funding, or the
-- capture is reversed (reversal_transaction_id).
-- Either way the user is told (notifications outbox row), the owner's merchant endpoints
-- subscribed to withdrawal.paid / withdrawal.failed get the event (webhook_emit), and one
-- audit row is written, in this transaction. Returns {"outcome": "settled" | "already" |
-- "not_approved" | "not_found", "status": <the withdrawal's status>, "outbox_ids": [...]}
-- (the rows the caller publishes right after its commit; the relay sweeps what it misses).
--
-- The row lock makes it race-safe: five deliveries of the same event settle once, and
-- the rest find it paid or failed ("already") and change nothing. A second, different
-- answer after the first (failed after paid) changes nothing either; the caller logs it.
-- A posting the ledger refuses (an old reversal into a wallet closed meanwhile) is raised:
-- nothing is written, and the caller's message stays for a retry and a human.
CREATE OR REPLACE FUNCTION withdrawal_settle(
  p_withdrawal uuid, p_outcome text, p_actor jsonb, p_reason text DEFAULT NULL, p_payout_id text DEFAULT NULL,
  p_source text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  w        withdrawals;
  h        holds;
  v_before jsonb;
  v_post   jsonb;
  v_reason text := left(nullif(btrim(p_reason), ''), 500);
  v_outbox bigint[];
BEGIN
  IF p_outcome NOT IN ('succeeded', 'failed') THEN
    RAISE EXCEPTION 'a payout settles as succeeded or failed, not %', p_outcome USING ERRCODE = 'LLVL0';
  END IF;
  SELECT * INTO w FROM withdrawals WHERE id = p_withdrawal FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not_found');
  END IF;
  IF w.status IN ('paid', 'failed') THEN
    RETURN jsonb_build_object('outcome', 'already', 'status', w.status);
  END IF;
  IF w.status <> 'approved' THEN
    RETURN jsonb_build_object('outcome', 'not_approved', 'status', w.status);
  END IF;
  v_before := withdrawal_json(w);
  IF w.capture_transaction_id IS NULL THEN
    SELECT * INTO h FROM holds WHERE id = w.hold_id FOR UPDATE;
    IF h.status <> 'active' THEN  -- only this function resolves an approved withdrawal's hold (withdrawal_owns)
      RAISE EXCEPTION 'withdrawal %: its hold % is %, not active', w.id, h.id, h.status USING ERRCODE = 'LLST0';
    END IF;
  END IF;
  IF p_outcome = 'succeeded' THEN
    v_post := ledger_post(
      p_kind => 'payout_settlement',
      p_accounts => ARRAY[
        CASE WHEN h.id IS NOT NULL THEN w.account_id
             ELSE (SELECT a.id FROM accounts a WHERE a.kind = 'payout_clearing' AND a.currency = w.currency
                      AND a.owner_id IS NULL) END,
        (SELECT a.id FROM accounts a WHERE a.kind = 'external_funding' AND a.currency = w.currency AND a.owner_id IS NULL)],
      p_currencies => ARRAY[w.currency, w.currency], p_amounts => ARRAY[-w.amount, w.amount], p_actor => p_actor,
      p_description => format('withdrawal %s paid', w.id), p_allow_frozen => true,
      p_capture => CASE WHEN h.id IS NOT NULL THEN jsonb_build_object('hold', h.id, 'amount', h.amount) END,
      p_metadata => jsonb_strip_nulls(jsonb_build_object('withdrawal_id', w.id, 'hold_id', h.id,
                                                         'payout_id', coalesce(p_payout_id, w.payout_id))));
  ELSIF h.id IS NOT NULL THEN
    v_post := ledger_hold_release(p_hold => h.id, p_actor => p_actor,
                                  p_reason => left(format('withdrawal %s: payout failed', w.id)
                                                   || coalesce(': ' || v_reason, ''), 500));
  ELSE
    v_post := ledger_reversal(p_transaction => w.capture_transaction_id,
                              p_reason => left(format('withdrawal %s: payout failed', w.id)
                                               || coalesce(': ' || v_reason, ''), 500),
                              p_actor => p_actor);
  END IF;
  IF v_post ? 'refusal' THEN
    RAISE EXCEPTION 'withdrawal %: the ledger refused the % posting: %', w.id, p_outcome,
      v_post->'refusal'->>'detail' USING ERRCODE = 'LLCF0';
  END IF;
  UPDATE withdrawals
     SET status = CASE p_outcome WHEN 'succeeded' THEN 'paid' ELSE 'failed' END,
         settlement_transaction_id = CASE WHEN p_outcome = 'succeeded' THEN (v_post->'transaction'->>'id')::uuid END,
         reversal_transaction_id = CASE WHEN p_outcome = 'failed' AND w.capture_transaction_id IS NOT NULL
                                        THEN (v_post->'transaction'->>'id')::uuid END,
         reason = CASE WHEN p_outcome = 'failed' THEN coalesce(v_reason, 'the payout failed') ELSE reason END,
         payout_id = coalesce(payout_id, p_payout_id), settled_at = clock_timestamp()
   WHERE id = w.id RETURNING * INTO w;
  INSERT INTO outbox (queue, payload) VALUES ('notifications', withdrawal_notice(w)) RETURNING ARRAY[id] INTO v_outbox;
  v_outbox := v_outbox || webhook_emit(p_owner => w.user_id, p_type => 'withdrawal.' || w.status,
                                       p_data => jsonb_build_object('withdrawal', withdrawal_json(w)));
  PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(jsonb_build_object(
            'action', CASE p_outcome WHEN 'succeeded' THEN 'withdrawal.paid' ELSE 'withdrawal.failed' END,
            'category', 'financial', 'resource_type', 'withdrawal', 'resource_id', w.id,
            'subjects', jsonb_build_array(w.user_id),
            'before', jsonb_build_object('withdrawal', v_before),
            'after', jsonb_build_object('withdrawal', withdrawal_json(w), 'transaction', v_post->'transaction')
                     || CASE WHEN h.id IS NOT NULL
                             THEN jsonb_build_object('hold', (SELECT ledger_hold_json(r) FROM holds r WHERE r.id = h.id))
                             ELSE '{}' END,
            'metadata', jsonb_strip_nulls(jsonb_build_object('source', p_source, 'payout_id', p_payout_id,
                                                             'reason', v_reason)))),
          p_resource_id => w.id::text, p_before => NULL, p_after => NULL);
  RETURN jsonb_build_object('outcome', 'settled', 'status', w.status, 'outbox_ids', to_jsonb(v_outbox));
END $$;

-- Callable by the application role (payout worker, webhook consumer) and the owner.
REVOKE ALL ON FUNCTION withdrawal_settle(uuid, text, jsonb, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION withdrawal_settle(uuid, text, jsonb, text, text, text) TO ledgerline_app;
