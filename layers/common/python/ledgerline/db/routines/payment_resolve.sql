-- An administrator resolves a flagged payment (POST /v1/admin/payments/{id}/resolve), or
-- says why not: {"payment": <payment_json>} or {"refusal": <problem>}. Run by money_op
-- 'payment_resolve', in the statement that claims the request's Idempotency-Key.
--
-- * credit: what the administrator established was received (p_amount; default the
--   amount the payment was created for) is credited external_funding → the wallet, with
--   the same unique posting reference a confirmed webhook would have used
--   ('<provider>:<reference>'), so the payment can never be credited twice; the user is
--   notified and a subscribed merchant gets payment.succeeded;
-- * fail: nothing is credited; the payment is failed (merchant event payment.failed).
-- Either way the reason is kept on the payment and in its one audit row (p_audit).
-- Only a flagged payment is resolved: anything else is invalid_state_transition.
CREATE OR REPLACE FUNCTION payment_resolve(
  p_payment uuid, p_outcome text, p_amount text, p_reason text, p_actor jsonb, p_audit jsonb
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  p        payments;
  v_amount jsonb;
  v_result jsonb;
  v_funding uuid;
  v_reason text := btrim(coalesce(p_reason, ''));
  v_shown  text;
  v_audit  jsonb;
BEGIN
  SELECT * INTO p FROM payments WHERE id = p_payment FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('payment %s not found', p_payment)));
  END IF;
  IF p_outcome IS NULL OR p_outcome NOT IN ('credit', 'fail') THEN
    RETURN jsonb_build_object('refusal', api_invalid('outcome', 'one of credit, fail'));
  END IF;
  IF length(v_reason) NOT BETWEEN 3 AND 500 THEN
    RETURN jsonb_build_object('refusal', api_invalid('reason', 'say why, in 3 to 500 characters'));
  END IF;
  IF p.status <> 'flagged' THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('payment %s is %s; only a flagged payment is resolved', p.id, p.status)));
  END IF;
  v_audit := p_audit || jsonb_build_object('resource_type', 'payment', 'resource_id', p.id,
    'before', jsonb_build_object('status', p.status, 'reason', p.reason, 'review', p.review),
    'metadata', coalesce(p_audit->'metadata', '{}'::jsonb)
                || jsonb_build_object('outcome', p_outcome, 'reason', v_reason, 'amount', p_amount));

  IF p_outcome = 'credit' THEN
    v_amount := CASE WHEN p_amount IS NULL THEN jsonb_build_object('amount', p.amount)
                     ELSE ledger_amount(p_text => p_amount, p_currency => p.currency) END;
    IF v_amount ? 'problem' THEN
      RETURN jsonb_build_object('refusal', v_amount->'problem');
    END IF;
    SELECT a.id INTO v_funding FROM accounts a
     WHERE a.kind = 'external_funding' AND a.currency = p.currency AND a.owner_id IS NULL;
    v_result := ledger_post(
      p_kind => 'topup', p_accounts => ARRAY[v_funding, p.account_id], p_currencies => ARRAY[p.currency, p.currency],
      p_amounts => ARRAY[-(v_amount->>'amount')::numeric, (v_amount->>'amount')::numeric], p_actor => p_actor,
      p_description => format('Top-up via %s (resolved)', p.provider), p_reference => p.provider || ':' || p.reference,
      p_metadata => jsonb_build_object('payment_id', p.id, 'provider', p.provider, 'resolved', true, 'reason', v_reason),
      p_audit => v_audit);
    IF v_result ? 'refusal' THEN
      RETURN v_result;
    END IF;
    UPDATE payments SET status = 'succeeded', transaction_id = (v_result->'transaction'->>'id')::uuid,
                        reason = left(v_reason, 500), updated_at = clock_timestamp()
     WHERE id = p.id RETURNING * INTO p;
    v_shown := (api_money((v_amount->>'amount')::numeric, p.currency)->>'amount') || ' ' || p.currency;
    INSERT INTO outbox (queue, payload) VALUES ('notifications', jsonb_build_object(
      'type', 'payment.received', 'user_id', p.owner_id, 'payment_id', p.id,
      'subject', format('Your top-up of %s has arrived', v_shown),
      'message', format('Your payment through %s (reference %s) was reviewed; %s is in your wallet now.',
                        initcap(p.provider), p.reference, v_shown)));
    PERFORM webhook_emit(p_owner => p.owner_id, p_type => 'payment.succeeded', p_data => payment_json(p) - 'checkout');
  ELSE
    UPDATE payments SET status = 'failed', reason = left(v_reason, 500), updated_at = clock_timestamp()
     WHERE id = p.id RETURNING * INTO p;
    PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(v_audit || jsonb_build_object(
      'after', payment_json(p), 'subjects', jsonb_build_array(p.owner_id))), p_resource_id => p.id::text,
      p_before => NULL, p_after => NULL);
    PERFORM webhook_emit(p_owner => p.owner_id, p_type => 'payment.failed', p_data => payment_json(p) - 'checkout');
  END IF;
  RETURN jsonb_build_object('payment', payment_json(p));
END $$;

-- Only money_op (SECURITY DEFINER, as the owner) calls it.
REVOKE ALL ON FUNCTION payment_resolve(uuid, text, text, text, jsonb, jsonb) FROM PUBLIC;
