-- Up to 1,000 transfers in one statement (POST /v1/transfers/batch): {"batch": <body>} or
-- {"refusal": <problem>}, never raised, so money_call stores and replays either.
--
-- p_mode 'atomic': all or nothing. The first item refused (a bad amount, an account not
--   found, frozen or short of funds, counted after the items before it) refuses the whole
--   batch with that item's problem: its detail starts "transfers[i]: ", its `index` is i
--   (0-based, as the request's array) and its field errors are named transfers.i.<field>.
--   Nothing is written: the postings so far are rolled back with the block (LLRB0), no
--   batch row, no transfer rows; money_op audits the refusal once (transfer.batch_failed).
-- p_mode 'independent': each item posts or is refused on its own, in order (an item sees
--   the balances the items before it left), like TigerBeetle's per-event results; a
--   refusal is that item's result {index, status: "refused", error: {status, code,
--   detail, errors?}}, and the batch is answered 201 even if every item was refused.
--
-- Locks: every non-hot balance any item touches is locked up front, in account-id order,
-- in one statement, before the first posting. Two batches (or a batch and single
-- transfers, which lock their two balances in id order too) over the same accounts
-- therefore queue instead of deadlocking, whatever order their items come in. Each
-- item's ledger_post then finds its rows already locked by this transaction.
--
-- Each posted item is an ordinary 'transfer' transaction (ledger_post: the same checks,
-- refusals and wording as POST /v1/transfers, p_owner and p_credit_kinds included, so
-- object-level authorization is per item) with metadata {batch_id, batch_index} and its
-- own audit row (transfer.completed, with the item as its request). One more audit row
-- (p_audit's action, transfer.batch_completed) records the bulk operation: mode, counts,
-- totals per currency and the refused items' indexes and codes.
CREATE OR REPLACE FUNCTION transfer_batch(
  p_mode text, p_items jsonb, p_owner uuid, p_credit_kinds text[], p_actor jsonb, p_audit jsonb
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
  v_id       uuid := gen_random_uuid();
  v_n        integer := coalesce(jsonb_array_length(p_items), 0);
  v_results  jsonb[] := '{}';
  v_refused  jsonb[] := '{}';
  v_totals   jsonb;
  v_posted   integer := 0;
  v_refusal  jsonb;
  v_created  timestamptz := clock_timestamp();
  v_item     jsonb;
  v_amount   jsonb;
  v_step     jsonb;
  v_problem  jsonb;
  v_sums     numeric[] := '{}';
  v_curs     text[] := '{}';
  k          integer;
  i          integer;
BEGIN
  IF p_mode NOT IN ('atomic', 'independent') OR v_n NOT BETWEEN 1 AND 1000 THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error',
      'a batch is {"mode": "atomic" | "independent", "transfers": [1 to 1,000 transfers]}'));
  END IF;

  -- Every balance the batch may touch, locked in account-id order before anything moves.
  PERFORM 1 FROM balances b
   WHERE b.account_id IN (SELECT (x.t->>'from_account_id')::uuid FROM jsonb_array_elements(p_items) x(t)
                          UNION SELECT (x.t->>'to_account_id')::uuid FROM jsonb_array_elements(p_items) x(t))
     AND NOT b.hot
   ORDER BY b.account_id
     FOR UPDATE;

  BEGIN
    FOR i IN 0 .. v_n - 1 LOOP
      v_item := p_items->i;
      v_problem := NULL;
      v_amount := ledger_amount(p_text => v_item->>'amount', p_currency => v_item->>'currency');
      IF v_amount ? 'problem' THEN
        v_problem := v_amount->'problem';
      ELSIF v_item->>'from_account_id' = v_item->>'to_account_id' THEN
        v_problem := api_problem('validation_error', 'from_account_id and to_account_id are the same account',
          jsonb_build_array(jsonb_build_object('field', 'to_account_id', 'message', 'send money to a different account')));
      ELSE
        v_step := ledger_post(
          p_kind => 'transfer',
          p_accounts => ARRAY[(v_item->>'from_account_id')::uuid, (v_item->>'to_account_id')::uuid],
          p_currencies => ARRAY[v_item->>'currency', v_item->>'currency'],
          p_amounts => ARRAY[-(v_amount->>'amount')::numeric, (v_amount->>'amount')::numeric],
          p_actor => p_actor, p_description => v_item->>'description', p_owner => p_owner,
          p_credit_kinds => p_credit_kinds,
          p_metadata => jsonb_build_object('batch_id', v_id, 'batch_index', i),
          p_audit => jsonb_build_object(
            'action', 'transfer.completed', 'category', p_audit->>'category', 'resource_type', 'transfer',
            'metadata', jsonb_build_object('request', v_item, 'batch_id', v_id, 'batch_index', i)));
        v_problem := v_step->'refusal';
      END IF;

      IF v_problem IS NOT NULL THEN
        IF p_mode = 'atomic' THEN
          v_refusal := v_problem
            || jsonb_build_object('detail', format('transfers[%s]: %s', i, v_problem->>'detail'), 'index', i)
            || CASE WHEN v_problem ? 'errors' THEN jsonb_build_object('errors', (
                 SELECT jsonb_agg(e || jsonb_build_object('field', format('transfers.%s.%s', i, e->>'field')))
                   FROM jsonb_array_elements(v_problem->'errors') e)) ELSE '{}'::jsonb END;
          RAISE EXCEPTION 'batch refused at item %', i USING ERRCODE = 'LLRB0';
        END IF;
        v_refused := v_refused || jsonb_build_object('index', i, 'code', v_problem->>'code');
        v_results := v_results || jsonb_build_object(
          'index', i, 'status', 'refused',
          'error', jsonb_strip_nulls(jsonb_build_object('status', v_problem->'status', 'code', v_problem->'code',
                                                        'detail', v_problem->'detail', 'errors', v_problem->'errors')));
      ELSE
        v_posted := v_posted + 1;
        k := array_position(v_curs, v_item->>'currency');
        IF k IS NULL THEN
          v_curs := v_curs || (v_item->>'currency');
          v_sums := v_sums || (v_amount->>'amount')::numeric;
        ELSE
          v_sums[k] := v_sums[k] + (v_amount->>'amount')::numeric;
        END IF;
        v_results := v_results || jsonb_build_object(
          'index', i, 'status', 'posted', 'transfer', jsonb_build_object(
            'id', v_step->'transaction'->'id', 'from_account_id', v_item->'from_account_id',
            'to_account_id', v_item->'to_account_id',
            'amount', api_money((v_amount->>'amount')::numeric, v_item->>'currency'), 'status', 'posted',
            'description', v_item->'description', 'reversed_by', NULL,
            'created_at', api_time((v_step->'transaction'->>'created_at')::timestamptz)));
      END IF;
    END LOOP;
  EXCEPTION WHEN SQLSTATE 'LLRB0' THEN
    RETURN jsonb_build_object('refusal', v_refusal);  -- variables survive the block's rollback; its writes do not
  END;

  SELECT coalesce(jsonb_agg(api_money(s.total, s.currency) ORDER BY s.currency), '[]'::jsonb) INTO v_totals
    FROM unnest(v_curs, v_sums) AS s(currency, total);
  INSERT INTO transfer_batches (id, owner_id, actor_id, actor_type, mode, item_count, posted_count, totals, created_at)
  VALUES (v_id, p_owner, (p_actor->>'id')::uuid, coalesce(p_actor->>'type', 'system'), p_mode, v_n, v_posted,
          v_totals, v_created);
  PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(jsonb_build_object(
    'action', p_audit->>'action', 'category', p_audit->>'category', 'resource_type', 'transfer_batch',
    'resource_id', v_id, 'metadata', jsonb_build_object(
      'mode', p_mode, 'items', v_n, 'posted', v_posted, 'refused', v_n - v_posted, 'totals', v_totals,
      'refused_items', to_jsonb(v_refused)))),
    p_resource_id => NULL, p_before => NULL, p_after => NULL);

  RETURN jsonb_build_object('batch', jsonb_build_object(
    'id', v_id, 'mode', p_mode, 'posted', v_posted, 'refused', v_n - v_posted, 'totals', v_totals,
    'created_at', api_time(v_created), 'results', to_jsonb(v_results)));
END $$;

-- Called by money_op (the owner's); nobody else.
REVOKE ALL ON FUNCTION transfer_batch(text, jsonb, uuid, text[], jsonb, jsonb) FROM PUBLIC;
