-- Act on one verified gateway webhook event about a payment, once, in one transaction:
-- record the event (its (provider, event id) row is the dedupe key), then, for a pending
-- payment, what the consumer decided from the event and the gateway's re-query
-- (ledgerline.payments.decide):
--
-- * succeeded: credit external_funding → the wallet (ledger_post, reference
--   '<provider>:<reference>' on the unique transactions.reference) with its audit row
--   (payment.succeeded), the payment's new status, the user's notification (outbox) and
--   the merchant event payment.succeeded (webhook_emit);
-- * flagged / failed: the payment's new status, why, what each side said, and its audit
--   row (payment.flagged / payment.failed; a failure is also the merchant event
--   payment.failed); nothing is credited;
-- * record: the event only (the consumer found the payment unknown or no longer pending
--   and asked the gateway nothing); ignored: an event about no payment (no lookup).
--
-- A second delivery of the event does nothing ('duplicate_event': it waits on the first's
-- uncommitted dedupe row, then finds it); another event of a payment no longer pending
-- does nothing ('already_<status>': the payment row is locked, so two events of one
-- payment are decided one after the other). An event about no payment of ours is audited
-- (payment.webhook_unmatched). Returns {"outcome", "payment", "outbox_ids"} (the rows to
-- publish right after the commit: ledgerline.outbox.publish_after_commit).
-- p_event: {event_id, type, reference, amount, currency, status}; p_gateway: the re-query
-- {provider_id, amount, currency, status} (amounts in major units, as text).
CREATE OR REPLACE FUNCTION payment_confirm(
  p_provider text, p_event jsonb, p_decision text, p_actor jsonb, p_gateway jsonb DEFAULT NULL,
  p_reason text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  p          payments;
  v_ref      text := p_event->>'reference';
  v_decision text := p_decision;
  v_reason   text := p_reason;
  v_outcome  text;
  v_result   jsonb;
  v_funding  uuid;
  v_amount   text;
  v_outbox   bigint[] := '{}';
  v_note     bigint;
BEGIN
  IF v_decision IS NULL OR v_decision NOT IN ('succeeded', 'failed', 'flagged', 'record', 'ignored') THEN
    RAISE EXCEPTION 'payment_confirm: unknown decision %', p_decision USING ERRCODE = 'LLVL0';
  END IF;
  INSERT INTO payment_webhook_events (provider, event_id, type, reference, outcome)
  VALUES (p_provider, p_event->>'event_id', coalesce(p_event->>'type', ''), v_ref, 'received')
  ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'duplicate_event', 'payment', NULL, 'outbox_ids', '[]'::jsonb);
  END IF;

  IF v_decision = 'ignored' OR v_ref IS NULL THEN
    v_outcome := 'ignored';
  ELSE
    SELECT * INTO p FROM payments WHERE provider = p_provider AND reference = v_ref FOR UPDATE;
    IF NOT FOUND THEN
      v_outcome := 'unknown_payment';
      PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(jsonb_build_object(
        'action', 'payment.webhook_unmatched', 'category', 'financial', 'resource_type', 'payment',
        'metadata', jsonb_build_object('provider', p_provider, 'event', p_event, 'gateway', p_gateway))),
        p_resource_id => NULL, p_before => NULL, p_after => NULL);
    ELSIF p.status <> 'pending' THEN
      v_outcome := 'already_' || p.status;
    ELSIF v_decision = 'record' THEN  -- nothing was asked of the gateway: keep the event, change nothing
      v_outcome := 'recorded';
    ELSIF v_decision = 'succeeded' THEN
      -- The consumer compared them; the money is checked again where it moves.
      IF (p_gateway->>'amount')::numeric IS DISTINCT FROM p.amount OR p_gateway->>'currency' IS DISTINCT FROM p.currency
         OR (p_event->>'amount' IS NOT NULL
             AND ((p_event->>'amount')::numeric <> p.amount OR p_event->>'currency' IS DISTINCT FROM p.currency)) THEN
        v_decision := 'flagged';
        v_reason := 'the webhook, the gateway and the payment do not agree on amount and currency';
      ELSE
        SELECT a.id INTO v_funding FROM accounts a
         WHERE a.kind = 'external_funding' AND a.currency = p.currency AND a.owner_id IS NULL;
        v_result := ledger_post(
          p_kind => 'topup', p_accounts => ARRAY[v_funding, p.account_id], p_currencies => ARRAY[p.currency, p.currency],
          p_amounts => ARRAY[-p.amount, p.amount], p_actor => p_actor, p_description => format('Top-up via %s', p.provider),
          p_reference => p.provider || ':' || p.reference,
          p_metadata => jsonb_build_object('payment_id', p.id, 'provider', p.provider,
                                           'provider_id', coalesce(p_gateway->>'provider_id', p.provider_id)),
          p_audit => jsonb_build_object('action', 'payment.succeeded', 'category', 'financial',
                                        'resource_type', 'payment', 'resource_id', p.id,
                                        'metadata', jsonb_build_object('event', p_event, 'gateway', p_gateway)));
        IF v_result ? 'refusal' THEN  -- the wallet was frozen or closed since: a person decides
          v_decision := 'flagged';
          v_reason := 'the wallet cannot receive it: ' || (v_result->'refusal'->>'detail');
        ELSE
          UPDATE payments SET status = 'succeeded', transaction_id = (v_result->'transaction'->>'id')::uuid,
                              provider_id = coalesce(p_gateway->>'provider_id', provider_id),
                              updated_at = clock_timestamp()
           WHERE id = p.id RETURNING * INTO p;
          v_amount := (api_money(p.amount, p.currency)->>'amount') || ' ' || p.currency;
          INSERT INTO outbox (queue, payload) VALUES ('notifications', jsonb_build_object(
            'type', 'payment.received', 'user_id', p.owner_id, 'payment_id', p.id,
            'subject', format('Your top-up of %s has arrived', v_amount),
            'message', format('We received your payment of %s through %s (reference %s); it is in your wallet now.',
                              v_amount, initcap(p.provider), p.reference)))
          RETURNING id INTO v_note;
          v_outbox := ARRAY[v_note] || webhook_emit(p_owner => p.owner_id, p_type => 'payment.succeeded',
                                                    p_data => payment_json(p) - 'checkout');
          v_outcome := 'credited';
        END IF;
      END IF;
    END IF;
    IF v_outcome IS NULL THEN  -- flagged or failed: nothing is credited
      UPDATE payments SET status = v_decision, reason = left(v_reason, 500),
                          review = jsonb_build_object('webhook', p_event, 'gateway', p_gateway),
                          provider_id = coalesce(p_gateway->>'provider_id', provider_id), updated_at = clock_timestamp()
       WHERE id = p.id RETURNING * INTO p;
      PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(jsonb_build_object(
        'action', 'payment.' || v_decision, 'category', 'financial', 'resource_type', 'payment',
        'subjects', jsonb_build_array(p.owner_id),
        'before', jsonb_build_object('status', 'pending'), 'after', payment_json(p),
        'metadata', jsonb_build_object('reason', v_reason, 'event', p_event, 'gateway', p_gateway))),
        p_resource_id => p.id::text, p_before => NULL, p_after => NULL);
      IF v_decision = 'failed' THEN
        v_outbox := webhook_emit(p_owner => p.owner_id, p_type => 'payment.failed', p_data => payment_json(p) - 'checkout');
      END IF;
      v_outcome := v_decision;
    END IF;
  END IF;

  UPDATE payment_webhook_events SET outcome = v_outcome, payment_id = p.id
   WHERE provider = p_provider AND event_id = p_event->>'event_id';
  RETURN jsonb_build_object('outcome', v_outcome, 'payment', CASE WHEN p.id IS NOT NULL THEN payment_json(p) END,
                            'outbox_ids', to_jsonb(v_outbox));
END $$;

REVOKE ALL ON FUNCTION payment_confirm(text, jsonb, text, jsonb, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_confirm(text, jsonb, text, jsonb, jsonb, text) TO ledgerline_app;
