-- Move an escrow along one edge of its machine, with the edge's money, in one
-- transaction: lock the escrow row (racing calls queue here: the second finds the status
-- moved on), check the edge is in escrow_transitions and the caller one of its parties,
-- post its ledger movement (ledger_post, transaction kinds escrow_*), close the escrow's
-- account when the status is terminal, record the dispute, update the status and write
-- one audit row (p_audit, when given). Returns {"escrow": <escrow_json>} with the
-- caller's allowed_transitions, or {"refusal": <problem>} with nothing written: a refusal
-- is returned, not raised, so money_call stores and answers it in the same statement.
--
-- The edges' money (docs/api.md "Escrow"):
--   fund    AWAITING_PAYMENT -> FUNDED: the buyer's wallet p_args.account_id (their own,
--           in the escrow's currency, with the funds) -> the escrow's account;
--   release FUNDED -> RELEASED, DISPUTED -> RESOLVED_RELEASED: ONE transaction of up to
--           three legs: the escrow's account -> the seller's wallet (amount - fee) and
--           -> the currency's fees_revenue account (fee_quote('escrow_release', ...) at
--           this moment; a hot account, appended to, never locked). The seller's wallet
--           is their oldest active user_wallet in the currency; none is a 409 conflict
--           and the escrow stays as it is until they open one;
--   refund  FUNDED -> REFUNDED, DISPUTED -> RESOLVED_REFUNDED: the escrow's account ->
--           the wallet it was funded from;
--   dispute FUNDED -> DISPUTED moves nothing: it opens the disputes row (p_args.reason),
--           within p_args.dispute_window_days (default 30) of funded_at; resolving it
--           (an administrator, p_args.reason) closes it with the outcome.
--
-- p_args.party_id: the caller's user id (buyer or seller), NULL for an administrator; a
-- user who is neither party gets "not found", as for a missing escrow. A refused edge is
-- 409 invalid_state_transition with the extension member allowed_transitions: the
-- statuses this caller may move the escrow to now.
CREATE OR REPLACE FUNCTION escrow_transition(p_escrow uuid, p_to text, p_args jsonb, p_actor jsonb, p_audit jsonb)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  e         escrows;
  t         escrow_transitions;
  v_party_id uuid := (p_args->>'party_id')::uuid;
  v_party   text;
  v_window  interval := coalesce((p_args->>'dispute_window_days')::integer, 30) * interval '1 day';
  v_reason  text := btrim(p_args->>'reason');
  v_now     timestamptz := clock_timestamp();
  v_allowed jsonb;
  v_before  jsonb;
  v_post    jsonb;
  v_tx      uuid := gen_random_uuid();
  v_fee     numeric;
  v_to      uuid;
  v_fees    uuid;
  v_accounts uuid[];
  v_amounts numeric[];
  v_from    uuid;
  v_edge    boolean;
  v_after   jsonb;
BEGIN
  SELECT * INTO e FROM escrows WHERE id = p_escrow FOR UPDATE;
  IF FOUND THEN
    v_party := CASE WHEN v_party_id IS NULL THEN 'admin' WHEN v_party_id = e.buyer_id THEN 'buyer'
                    WHEN v_party_id = e.seller_id THEN 'seller' END;
  END IF;
  IF v_party IS NULL THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('escrow %s not found', p_escrow)));
  END IF;

  SELECT * INTO t FROM escrow_transitions
   WHERE from_status = e.status AND to_status = p_to AND v_party = ANY (parties);
  v_edge := FOUND;
  IF NOT v_edge OR (t.action = 'dispute' AND e.funded_at + v_window <= v_now) THEN
    v_allowed := escrow_allowed(e => e, p_party => v_party, p_window => v_window, p_now => v_now);
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      CASE WHEN v_edge THEN format('escrow %s can no longer be disputed: the window of %s closed at %s', e.id,
                                  v_window, api_time(e.funded_at + v_window))
           ELSE format('escrow %s is %s; the %s cannot move it to %s (allowed: %s)', e.id, e.status, v_party,
                       coalesce(p_to, 'nothing'), CASE WHEN v_allowed = '[]'::jsonb THEN 'none'
                                                       ELSE (SELECT string_agg(x, ', ') FROM jsonb_array_elements_text(v_allowed) x) END)
      END) || jsonb_build_object('allowed_transitions', v_allowed));
  END IF;
  IF t.action IN ('dispute', 'resolve') AND length(coalesce(v_reason, '')) NOT BETWEEN 3 AND 2000 THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error', 'a reason is required',
      jsonb_build_array(jsonb_build_object('field', 'reason', 'message', 'say why, in 3 to 2000 characters'))));
  END IF;
  -- The audit row's before and after are what a transition changes (status, money, the
  -- transactions), not the whole Escrow: the row's hash walks every node of its payloads.
  v_before := jsonb_build_object('status', e.status, 'funded_from', e.funded_from,
                                 'fund_transaction_id', e.fund_transaction_id);

  -- The edge's money, first: a refusal (funds, a frozen wallet, no wallet to pay) leaves
  -- everything as it was.
  IF t.movement = 'fund' THEN
    v_from := (p_args->>'account_id')::uuid;
    IF v_from IS NULL THEN
      RETURN jsonb_build_object('refusal', api_problem('validation_error', 'account_id is required',
        jsonb_build_array(jsonb_build_object('field', 'account_id', 'message', 'the wallet that pays the escrow'))));
    END IF;
    v_post := ledger_post(
      p_kind => 'escrow_fund', p_accounts => ARRAY[v_from, e.account_id], p_currencies => ARRAY[e.currency, e.currency],
      p_amounts => ARRAY[-e.amount, e.amount], p_actor => p_actor, p_owner => e.buyer_id,
      p_credit_kinds => ARRAY['escrow'], p_id => v_tx, p_description => format('escrow %s funded', e.id),
      p_metadata => jsonb_build_object('escrow_id', e.id));
    e.funded_from := v_from;
    e.funded_at := v_now;
    e.fund_transaction_id := v_tx;
  ELSIF t.movement = 'release' THEN
    SELECT a.id INTO v_to FROM accounts a
     WHERE a.owner_id = e.seller_id AND a.kind = 'user_wallet' AND a.currency = e.currency AND a.status = 'active'
     ORDER BY a.created_at, a.id LIMIT 1;
    IF v_to IS NULL THEN
      RETURN jsonb_build_object('refusal', api_problem('conflict',
        format('the seller has no active %s wallet to be paid into; escrow %s stays %s until they open one',
               e.currency, e.id, e.status)));
    END IF;
    v_fee := fee_quote(p_kind => 'escrow_release', p_currency => e.currency, p_amount => e.amount);
    SELECT a.id INTO v_fees FROM accounts a WHERE a.kind = 'fees_revenue' AND a.currency = e.currency AND a.owner_id IS NULL;
    v_accounts := ARRAY[e.account_id];
    v_amounts := ARRAY[-e.amount];
    IF e.amount - v_fee > 0 THEN
      v_accounts := v_accounts || v_to;
      v_amounts := v_amounts || (e.amount - v_fee);
    END IF;
    IF v_fee > 0 THEN
      v_accounts := v_accounts || v_fees;
      v_amounts := v_amounts || v_fee;
    END IF;
    v_post := ledger_post(
      p_kind => 'escrow_release', p_accounts => v_accounts,
      p_currencies => array_fill(e.currency, ARRAY[cardinality(v_accounts)]), p_amounts => v_amounts,
      p_actor => p_actor, p_id => v_tx, p_description => format('escrow %s released', e.id),
      p_metadata => jsonb_build_object('escrow_id', e.id, 'fee', v_fee));
    e.fee := v_fee;
    e.settle_transaction_id := v_tx;
    e.settled_at := v_now;
  ELSIF t.movement = 'refund' THEN
    v_post := ledger_post(
      p_kind => 'escrow_refund', p_accounts => ARRAY[e.account_id, e.funded_from],
      p_currencies => ARRAY[e.currency, e.currency], p_amounts => ARRAY[-e.amount, e.amount], p_actor => p_actor,
      p_id => v_tx, p_description => format('escrow %s refunded', e.id),
      p_metadata => jsonb_build_object('escrow_id', e.id));
    e.settle_transaction_id := v_tx;
    e.settled_at := v_now;
  END IF;
  IF v_post ? 'refusal' THEN
    RETURN v_post;
  END IF;

  IF t.to_status IN ('RELEASED', 'REFUNDED', 'RESOLVED_RELEASED', 'RESOLVED_REFUNDED') THEN
    -- Zero now (its whole amount left in the posting above): closed, it can never be paid
    -- into again, and escrow_guard refuses a terminal status without this.
    PERFORM ledger_set_account_status(p_account => e.account_id, p_status => 'closed',
                                      p_reason => format('escrow %s %s', e.id, t.to_status), p_actor => p_actor);
  END IF;
  IF t.action = 'dispute' THEN
    INSERT INTO disputes (escrow_id, raised_by, reason) VALUES (e.id, v_party_id, v_reason);
  ELSIF t.action = 'resolve' THEN
    UPDATE disputes
       SET status = 'resolved', outcome = CASE WHEN t.movement = 'release' THEN 'release' ELSE 'refund' END,
           resolved_by = (p_actor->>'id')::uuid, resolution_reason = v_reason, resolved_at = v_now
     WHERE escrow_id = e.id AND status = 'open';
  END IF;
  UPDATE escrows
     SET status = t.to_status, funded_from = e.funded_from, funded_at = e.funded_at,
         fund_transaction_id = e.fund_transaction_id, fee = e.fee, settle_transaction_id = e.settle_transaction_id,
         settled_at = e.settled_at
   WHERE id = e.id
  RETURNING * INTO e;
  v_after := escrow_json(e);

  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(p_audit || jsonb_build_object(
              'resource_type', 'escrow', 'resource_id', e.id, 'subjects', jsonb_build_array(e.buyer_id, e.seller_id),
              'metadata', coalesce(p_audit->'metadata', '{}'::jsonb)
                          || jsonb_build_object('transition', jsonb_build_object(
                               'from', v_before->>'status', 'to', e.status, 'action', t.action, 'party', v_party))
                          || CASE WHEN v_reason IS NOT NULL AND t.action IN ('dispute', 'resolve')
                                  THEN jsonb_build_object('reason', v_reason) ELSE '{}'::jsonb END,
              'before', jsonb_build_object('escrow', v_before),
              'after', jsonb_build_object('escrow', jsonb_build_object(
                         'status', e.status, 'funded_from', e.funded_from, 'fund_transaction_id', e.fund_transaction_id,
                         'fee', e.fee, 'settle_transaction_id', e.settle_transaction_id,
                         'dispute_id', (SELECT d.id FROM disputes d WHERE d.escrow_id = e.id)),
                       'transaction', v_post->'transaction'))),
            p_resource_id => e.id::text, p_before => NULL, p_after => NULL);
  END IF;
  RETURN jsonb_build_object('escrow', v_after || jsonb_build_object(
    'allowed_transitions', escrow_allowed(e => e, p_party => v_party, p_window => v_window, p_now => v_now)));
END $$;

-- Callable by the application role (the escrow routes through money_call, an invoice's
-- payment) and the owner, not by PUBLIC.
REVOKE ALL ON FUNCTION escrow_transition(uuid, text, jsonb, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION escrow_transition(uuid, text, jsonb, jsonb, jsonb) TO ledgerline_app;
