-- Run one money operation for an admitted caller: {"status", "body"}; a refusal is
-- {"status": <4xx>, "body": <problem>} and is audited (p_args.audit.failed), never raised:
-- money_call stores and answers it in the same statement.
-- p_args: the operation's arguments as the handler sent them (amounts as text), with
--   owner_id (the caller, on user routes), credit_kinds, status (of a success), audit
--   {done, failed, category} and request (as sent, for the audit trail); all set by
--   ledgerline.ledger.operations.
CREATE OR REPLACE FUNCTION money_op(p_op text, p_actor jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_owner  uuid := (p_args->>'owner_id')::uuid;
  v_kinds  text[];
  v_done   jsonb := jsonb_build_object('action', p_args->'audit'->>'done', 'category', p_args->'audit'->>'category',
                                       'metadata', jsonb_build_object('request', p_args->'request'));
  v_amount jsonb;
  v_result jsonb;
  v_body   jsonb;
  v_status integer := coalesce((p_args->>'status')::integer, 201);
  h        holds;
BEGIN
  IF jsonb_typeof(p_args->'credit_kinds') = 'array' THEN
    v_kinds := ARRAY(SELECT jsonb_array_elements_text(p_args->'credit_kinds'));
  END IF;
  CASE p_op
  WHEN 'transfer' THEN
    v_amount := ledger_amount(p_text => p_args->>'amount', p_currency => p_args->>'currency');
    IF v_amount ? 'problem' THEN
      v_result := jsonb_build_object('refusal', v_amount->'problem');
    ELSIF p_args->>'from_account_id' = p_args->>'to_account_id' THEN
      v_result := jsonb_build_object('refusal', api_problem('validation_error',
        'from_account_id and to_account_id are the same account',
        jsonb_build_array(jsonb_build_object('field', 'to_account_id', 'message', 'send money to a different account'))));
    ELSE
      v_result := ledger_post(
        p_kind => 'transfer',
        p_accounts => ARRAY[(p_args->>'from_account_id')::uuid, (p_args->>'to_account_id')::uuid],
        p_currencies => ARRAY[p_args->>'currency', p_args->>'currency'],
        p_amounts => ARRAY[-(v_amount->>'amount')::numeric, (v_amount->>'amount')::numeric],
        p_actor => p_actor, p_description => p_args->>'description', p_owner => v_owner, p_credit_kinds => v_kinds,
        p_audit => v_done || '{"resource_type": "transfer"}');
      IF v_result ? 'transaction' THEN
        v_body := jsonb_build_object(
          'id', v_result->'transaction'->'id', 'from_account_id', p_args->'from_account_id',
          'to_account_id', p_args->'to_account_id', 'amount', api_money((v_amount->>'amount')::numeric, p_args->>'currency'),
          'status', 'posted', 'description', p_args->'description', 'reversed_by', NULL,
          'created_at', api_time((v_result->'transaction'->>'created_at')::timestamptz));
      END IF;
    END IF;

  WHEN 'transfer_batch' THEN  -- transfer_batch.sql (issue 19): atomic or independent, locks taken up front
    v_result := transfer_batch(p_mode => p_args->>'mode', p_items => p_args->'transfers', p_owner => v_owner,
                               p_credit_kinds => v_kinds, p_actor => p_actor, p_audit => v_done);
    v_body := v_result->'batch';

  WHEN 'hold_create' THEN
    v_amount := ledger_amount(p_text => p_args->>'amount', p_currency => p_args->>'currency');
    IF v_amount ? 'problem' THEN
      v_result := jsonb_build_object('refusal', v_amount->'problem');
    ELSE
      v_result := ledger_hold_place(
        p_account => (p_args->>'account_id')::uuid, p_currency => p_args->>'currency',
        p_amount => (v_amount->>'amount')::numeric,
        p_expires_at => clock_timestamp() + (p_args->>'expires_in_seconds')::integer * interval '1 second',
        p_actor => p_actor, p_audit => v_done || '{"resource_type": "hold"}', p_owner => v_owner,
        p_description => p_args->>'description');
      IF v_result ? 'hold' THEN
        v_body := api_hold(jsonb_populate_record(NULL::holds, v_result->'hold'));
      END IF;
    END IF;

  WHEN 'hold_capture' THEN
    v_result := api_hold_target(p_hold => (p_args->>'hold_id')::uuid, p_owner => v_owner);
    IF NOT v_result ? 'refusal' THEN
      v_amount := CASE WHEN p_args->>'amount' IS NULL THEN '{}'::jsonb
                       ELSE ledger_amount(p_text => p_args->>'amount', p_currency => v_result->'hold'->>'currency') END;
      IF v_amount ? 'problem' THEN
        v_result := jsonb_build_object('refusal', v_amount->'problem');
      ELSE
        v_result := ledger_hold_post(
          p_hold => (p_args->>'hold_id')::uuid, p_to => (p_args->>'to_account_id')::uuid,
          p_amount => (v_amount->>'amount')::numeric, p_actor => p_actor,
          p_audit => v_done || '{"resource_type": "hold"}', p_owner => v_owner, p_credit_kinds => v_kinds);
        IF v_result ? 'hold' THEN
          v_body := api_hold(jsonb_populate_record(NULL::holds, v_result->'hold'));
        END IF;
      END IF;
    END IF;

  WHEN 'hold_void' THEN
    v_result := api_hold_target(p_hold => (p_args->>'hold_id')::uuid, p_owner => v_owner);
    IF NOT v_result ? 'refusal' THEN
      v_result := ledger_hold_release(p_hold => (p_args->>'hold_id')::uuid, p_actor => p_actor,
                                      p_audit => v_done || '{"resource_type": "hold"}', p_owner => v_owner,
                                      p_reason => p_args->>'reason');
      IF v_result ? 'hold' THEN
        v_body := api_hold(jsonb_populate_record(NULL::holds, v_result->'hold'));
      END IF;
    END IF;

  WHEN 'adjust' THEN
    v_amount := ledger_amount(p_text => p_args->>'amount', p_currency => p_args->>'currency');
    IF v_amount ? 'problem' THEN
      v_result := jsonb_build_object('refusal', v_amount->'problem');
    ELSIF length(btrim(coalesce(p_args->>'reason', ''))) NOT BETWEEN 3 AND 500 THEN
      v_result := jsonb_build_object('refusal', api_problem('validation_error', 'a reason is required',
        jsonb_build_array(jsonb_build_object('field', 'reason', 'message', 'say why, in 3 to 500 characters'))));
    ELSE
      v_result := ledger_post(
        p_kind => 'adjustment',
        p_accounts => ARRAY[(p_args->>'account_id')::uuid,
                            (SELECT a.id FROM accounts a WHERE a.kind = 'adjustments' AND a.currency = p_args->>'currency'
                               AND a.owner_id IS NULL)],
        p_currencies => ARRAY[p_args->>'currency', p_args->>'currency'],
        p_amounts => CASE WHEN p_args->>'direction' = 'credit'
                          THEN ARRAY[(v_amount->>'amount')::numeric, -(v_amount->>'amount')::numeric]
                          ELSE ARRAY[-(v_amount->>'amount')::numeric, (v_amount->>'amount')::numeric] END,
        p_actor => p_actor, p_description => btrim(p_args->>'reason'),
        p_metadata => jsonb_build_object('reason', btrim(p_args->>'reason'), 'direction', p_args->>'direction'),
        p_allow_frozen => true,
        p_audit => v_done || jsonb_build_object('resource_type', 'transaction', 'metadata', jsonb_build_object(
                     'request', p_args->'request', 'reason', btrim(p_args->>'reason'),
                     'direction', p_args->>'direction', 'account_id', p_args->>'account_id')));
      IF v_result ? 'transaction' THEN
        v_body := jsonb_build_object(
          'transaction_id', v_result->'transaction'->'id', 'account_id', p_args->'account_id',
          'amount', api_money((v_amount->>'amount')::numeric, p_args->>'currency'), 'direction', p_args->'direction',
          'reason', p_args->'reason', 'created_at', api_time((v_result->'transaction'->>'created_at')::timestamptz));
      END IF;
    END IF;

  WHEN 'reverse' THEN
    v_result := coalesce(withdrawal_owns(p_transaction => (p_args->>'transaction_id')::uuid), ledger_reversal(
      p_transaction => (p_args->>'transaction_id')::uuid, p_reason => p_args->>'reason', p_actor => p_actor,
      p_audit => v_done || jsonb_build_object('resource_type', 'transaction', 'resource_id', p_args->>'transaction_id',
                                              'metadata', jsonb_build_object('reason', p_args->>'reason'))));
    IF v_result ? 'transaction' THEN
      v_body := api_transaction(v_result->'transaction') || jsonb_build_object('reason', p_args->'reason');
    END IF;

  WHEN 'topup' THEN  -- a pending payment; no money moves until the gateway confirms it (payment_confirm)
    v_amount := ledger_amount(p_text => p_args->>'amount', p_currency => p_args->>'currency');
    IF v_amount ? 'problem' THEN
      v_result := jsonb_build_object('refusal', v_amount->'problem');
    ELSE
      v_result := payment_open(
        p_owner => v_owner, p_account => (p_args->>'account_id')::uuid, p_amount => (v_amount->>'amount')::numeric,
        p_currency => p_args->>'currency', p_provider => p_args->>'provider', p_actor => p_actor, p_audit => v_done);
      v_body := v_result->'payment';
    END IF;
  WHEN 'payment_resolve' THEN  -- an administrator's decision on a flagged payment
    v_result := payment_resolve(
      p_payment => (p_args->>'payment_id')::uuid, p_outcome => p_args->>'outcome', p_amount => p_args->>'amount',
      p_reason => p_args->>'reason', p_actor => p_actor, p_audit => v_done);
    v_body := v_result->'payment';
  WHEN 'withdrawal_request' THEN  -- withdrawal_*.sql
    v_result := withdrawal_request(p_args => p_args, p_actor => p_actor, p_audit => v_done);
    v_body := v_result->'withdrawal';
  WHEN 'withdrawal_approve' THEN
    v_result := withdrawal_approve(p_withdrawal => (p_args->>'withdrawal_id')::uuid, p_actor => p_actor, p_audit => v_done);
    v_body := v_result->'withdrawal';
  WHEN 'withdrawal_reject' THEN
    v_result := withdrawal_reject(p_withdrawal => (p_args->>'withdrawal_id')::uuid, p_reason => p_args->>'reason',
                                  p_actor => p_actor, p_audit => v_done);
    v_body := v_result->'withdrawal';
  WHEN 'bulk_payout_request' THEN  -- bulk_payout_*.sql (issue 19): each item a withdrawal with its hold
    v_result := bulk_payout_request(p_args => p_args, p_actor => p_actor, p_audit => v_done);
    v_body := v_result->'bulk_payout';
  WHEN 'bulk_payout_approve' THEN
    v_result := bulk_payout_approve(p_bulk => (p_args->>'bulk_payout_id')::uuid, p_actor => p_actor, p_audit => v_done);
    v_body := v_result->'bulk_payout';
  WHEN 'bulk_payout_reject' THEN
    v_result := bulk_payout_reject(p_bulk => (p_args->>'bulk_payout_id')::uuid, p_reason => p_args->>'reason',
                                   p_actor => p_actor, p_audit => v_done);
    v_body := v_result->'bulk_payout';
  WHEN 'invoice_pay' THEN  -- invoice_pay.sql: opens and funds the invoice's escrow, marks it PAID
    v_result := invoice_pay(p_invoice => (p_args->>'invoice_id')::uuid, p_account => (p_args->>'account_id')::uuid,
                            p_owner => v_owner, p_actor => p_actor, p_audit => v_done,
                            p_version => (p_args->>'version')::integer);
    v_body := v_result->'invoice';
  WHEN 'escrow_open' THEN  -- escrow_open.sql: moves nothing; the caller is the buyer
    v_amount := ledger_amount(p_text => p_args->>'amount', p_currency => p_args->>'currency');
    IF v_amount ? 'problem' THEN
      v_result := jsonb_build_object('refusal', v_amount->'problem');
    ELSE
      v_result := escrow_open(
        p_buyer => v_owner, p_seller => (p_args->>'seller_id')::uuid, p_currency => p_args->>'currency',
        p_amount => (v_amount->>'amount')::numeric, p_description => p_args->>'description', p_invoice => NULL,
        p_actor => p_actor, p_audit => v_done);
      v_body := v_result->'escrow';
    END IF;
  WHEN 'escrow_fund', 'escrow_release', 'escrow_refund', 'escrow_dispute', 'escrow_resolve' THEN  -- escrow_transition.sql
    v_result := escrow_transition(
      p_escrow => (p_args->>'escrow_id')::uuid,
      p_to => CASE p_op WHEN 'escrow_fund' THEN 'FUNDED' WHEN 'escrow_release' THEN 'RELEASED'
                        WHEN 'escrow_refund' THEN 'REFUNDED' WHEN 'escrow_dispute' THEN 'DISPUTED'
                        ELSE CASE p_args->>'outcome' WHEN 'release' THEN 'RESOLVED_RELEASED'
                                                     WHEN 'refund' THEN 'RESOLVED_REFUNDED' END END,
      p_args => p_args || jsonb_build_object('party_id', v_owner), p_actor => p_actor, p_audit => v_done);
    v_body := v_result->'escrow';
  ELSE
    RAISE EXCEPTION 'unknown money operation %', p_op USING ERRCODE = 'LLVL0';
  END CASE;

  IF v_result ? 'refusal' THEN
    PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(jsonb_build_object(
      'action', p_args->'audit'->>'failed', 'category', p_args->'audit'->>'category', 'resource_type', p_op,
      'metadata', jsonb_build_object('request', p_args->'request', 'error', jsonb_build_object(
        'status', v_result->'refusal'->'status', 'code', v_result->'refusal'->'code',
        'detail', v_result->'refusal'->'detail')))),
      p_resource_id => NULL, p_before => NULL, p_after => NULL);
    RETURN jsonb_build_object('status', (v_result->'refusal'->>'status')::integer, 'body', v_result->'refusal');
  END IF;
  RETURN jsonb_build_object('status', v_status, 'body', v_body);
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION money_op(text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION money_op(text, jsonb, jsonb) TO ledgerline_app;
