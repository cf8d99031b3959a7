-- POST /v1/payouts/bulk, inside money_op (one statement with the idempotency claim): a
-- merchant's wallet paid out to many of its payout accounts. All or nothing: every item
-- is checked and held, or the request is refused naming the first bad item
-- ({"refusal": <problem>}, nothing held, nothing written but the refusal's audit row).
--
-- Each item becomes a withdrawal (bulk_payout_id, bulk_index) with its own hold on the
-- wallet, to one of the caller's live payout accounts (payout_account_destination: 404,
-- and the cooling-off limit per item, 409). The holds are placed in index order on the
-- one wallet, whose balance row each placement locks: concurrent requests on a wallet
-- queue on it, never deadlock.
--
-- approvals_required by the total (p_args.approval {"one", "two"}: amounts in major units,
-- null for none; "items"): above "two" two administrators, above "one" (or more items
-- than "items") one, else none, and then every item is approved in this same statement
-- (bulk_payout_approve_items; the item count keeps that statement within its time budget).
--
-- Audit: p_audit (bulk_payout.requested) once, with the counts and the total, plus one
-- withdrawal.requested row per item.
CREATE OR REPLACE FUNCTION bulk_payout_request(p_args jsonb, p_actor jsonb, p_audit jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_owner    uuid := (p_args->>'owner_id')::uuid;
  v_currency text := p_args->>'currency';
  v_bulk     uuid := (p_args->>'id')::uuid;
  v_kind     text;
  v_acc_cur  text;
  v_item     jsonb;
  v_index    integer;
  v_amount   jsonb;
  v_dest     jsonb;
  v_hold     jsonb;
  v_wid      uuid;
  v_total    numeric := 0;
  v_required smallint;
  v_refusal  jsonb;
  v_rows     jsonb[] := '{}';
  b          bulk_payouts;
  w          withdrawals;
BEGIN
  -- The second factor was checked in Python before this statement (as for a withdrawal);
  -- a bulk payout that needed it and did not pass it is refused here too.
  IF (p_args->'step_up'->>'required')::boolean AND NOT coalesce((p_args->'step_up'->>'passed')::boolean, false) THEN
    RETURN jsonb_build_object('refusal', api_problem('unauthorized',
      'this bulk payout needs a second factor: send a current code of your authenticator app as "otp"')
      || '{"code": "otp_required", "title": "A one-time password is required", "type": "https://docs.ledgerline.dev/problems/otp-required"}');
  END IF;
  SELECT a.kind, a.currency INTO v_kind, v_acc_cur FROM accounts a
   WHERE a.id = (p_args->>'account_id')::uuid AND a.owner_id = v_owner;
  IF NOT FOUND OR v_kind <> 'user_wallet' THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('account %s not found', p_args->>'account_id')));
  END IF;
  IF v_acc_cur <> v_currency THEN
    RETURN jsonb_build_object('refusal', api_invalid('currency', format('the wallet holds %s', v_acc_cur)));
  END IF;
  -- Every amount first (cheap, no locks): a bad one names its item.
  FOR v_item, v_index IN SELECT e, (o - 1)::integer FROM jsonb_array_elements(p_args->'items') WITH ORDINALITY AS t(e, o) LOOP
    v_amount := ledger_amount(p_text => v_item->>'amount', p_currency => v_currency);
    IF v_amount ? 'problem' THEN
      RETURN jsonb_build_object('refusal', api_invalid(format('items.%s.amount', v_index),
        coalesce(v_amount->'problem'->'errors'->0->>'message', v_amount->'problem'->>'detail')));
    END IF;
    v_total := v_total + (v_amount->>'amount')::numeric;
  END LOOP;
  v_required := CASE WHEN (p_args->'approval'->>'two') IS NOT NULL AND v_total > (p_args->'approval'->>'two')::numeric THEN 2
                     WHEN (p_args->'approval'->>'one') IS NOT NULL AND v_total > (p_args->'approval'->>'one')::numeric THEN 1
                     WHEN jsonb_array_length(p_args->'items') > (p_args->'approval'->>'items')::integer THEN 1
                     ELSE 0 END;
  BEGIN  -- a block of its own: a refused item takes back every hold placed before it
    INSERT INTO bulk_payouts (id, user_id, account_id, currency, total, item_count, approvals_required, status)
    VALUES (v_bulk, v_owner, (p_args->>'account_id')::uuid, v_currency, v_total,
            jsonb_array_length(p_args->'items'), v_required, 'pending_approval')
    RETURNING * INTO b;
    FOR v_item, v_index IN SELECT e, (o - 1)::integer FROM jsonb_array_elements(p_args->'items') WITH ORDINALITY AS t(e, o) LOOP
      v_amount := ledger_amount(p_text => v_item->>'amount', p_currency => v_currency);
      v_dest := payout_account_destination(p_payout_account => (v_item->>'payout_account_id')::uuid, p_owner => v_owner,
                                           p_amount => (v_amount->>'amount')::numeric, p_cooling => p_args->'cooling_off');
      IF v_dest ? 'refusal' THEN
        v_refusal := v_dest->'refusal' || jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                       'field', format('items.%s.payout_account_id', v_index), 'message', v_dest->'refusal'->>'detail')));
        RAISE EXCEPTION 'refused' USING ERRCODE = 'LLBP0';
      END IF;
      v_dest := v_dest->'destination';
      v_wid := gen_random_uuid();
      v_hold := ledger_hold_place(
        p_account => (p_args->>'account_id')::uuid, p_currency => v_currency, p_amount => (v_amount->>'amount')::numeric,
        p_expires_at => clock_timestamp() + (p_args->>'hold_expires_in_seconds')::integer * interval '1 second',
        p_actor => p_actor, p_owner => v_owner, p_description => format('withdrawal %s', v_wid),
        p_metadata => jsonb_build_object('withdrawal_id', v_wid, 'bulk_payout_id', v_bulk));
      IF v_hold ? 'refusal' THEN
        v_refusal := v_hold->'refusal' || jsonb_build_object('detail', format('item %s: %s', v_index,
                                                                              v_hold->'refusal'->>'detail'));
        RAISE EXCEPTION 'refused' USING ERRCODE = 'LLBP0';
      END IF;
      INSERT INTO withdrawals (id, user_id, account_id, currency, amount, hold_id, provider, bank_code, account_name,
                               account_number_blind_index, account_number_last4, step_up, payout_account_id,
                               bulk_payout_id, bulk_index, narration)
      VALUES (v_wid, v_owner, (p_args->>'account_id')::uuid, v_currency, (v_amount->>'amount')::numeric,
              (v_hold->'hold'->>'id')::uuid, v_dest->>'provider', v_dest->>'bank_code', v_dest->>'account_name',
              decode(v_dest->>'account_number_blind_index', 'hex'), v_dest->>'account_number_last4',
              CASE WHEN (p_args->'step_up'->>'passed')::boolean THEN 'otp' ELSE 'none' END,
              (v_dest->>'payout_account_id')::uuid, v_bulk, v_index, nullif(btrim(v_item->>'narration'), ''))
      RETURNING * INTO w;
      v_rows := array_append(v_rows, jsonb_build_object(
        'action', 'withdrawal.requested', 'category', p_audit->>'category', 'resource_type', 'withdrawal',
        'resource_id', w.id, 'metadata', jsonb_build_object('bulk_payout_id', v_bulk, 'index', v_index),
        'after', jsonb_build_object('withdrawal', withdrawal_json(w),
                                    'hold', ledger_hold_json(jsonb_populate_record(NULL::holds, v_hold->'hold')))));
    END LOOP;
  EXCEPTION WHEN SQLSTATE 'LLBP0' THEN
    RETURN jsonb_build_object('refusal', v_refusal);
  END;
  PERFORM ledger_audit(p_actor => p_actor, p_rows => to_jsonb(v_rows) || jsonb_build_array(p_audit || jsonb_build_object(
            'resource_type', 'bulk_payout', 'resource_id', v_bulk,
            'after', jsonb_build_object('bulk_payout', jsonb_build_object(
              'id', v_bulk, 'account_id', b.account_id, 'item_count', b.item_count,
              'total', api_money(b.total, b.currency), 'approvals_required', v_required)))),
          p_resource_id => NULL, p_before => NULL, p_after => NULL);
  IF v_required = 0 THEN  -- small enough to need no administrator: approved by the rule, paid out now
    PERFORM bulk_payout_approve_items(
      p_bulk => v_bulk,
      p_actor => jsonb_build_object('id', NULL, 'type', 'system', 'metadata', jsonb_build_object(
                   'rule', 'bulk payout total at or below the approval limit', 'requested_by', p_actor->'id')),
      p_category => p_audit->>'category');
    UPDATE bulk_payouts SET status = 'approved', decided_at = clock_timestamp() WHERE id = v_bulk RETURNING * INTO b;
  END IF;
  RETURN jsonb_build_object('bulk_payout', bulk_payout_json(b));
END $$;

REVOKE ALL ON FUNCTION bulk_payout_request(jsonb, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bulk_payout_request(jsonb, jsonb, jsonb) TO ledgerline_app;
