-- Open a top-up: a pending payment into one of the caller's wallets, and its audit row
-- (payment.initiated), or say why not: {"payment": <payment_json>} or {"refusal": <problem>}.
-- No money moves: the wallet is credited only when the gateway confirms the payment
-- (payment_confirm). Run by money_op 'topup', so the request's Idempotency-Key is claimed
-- in the same statement; the gateway's checkout is asked for afterwards, keyed by the
-- payment's id (ledgerline.payments.checkout).
CREATE OR REPLACE FUNCTION payment_open(
  p_owner uuid, p_account uuid, p_amount numeric, p_currency text, p_provider text, p_actor jsonb, p_audit jsonb
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  a accounts;
  p payments;
  v_id uuid := gen_random_uuid();
BEGIN
  IF p_provider IS NULL OR p_provider NOT IN ('paystack', 'stripe', 'flutterwave') THEN
    RETURN jsonb_build_object('refusal', api_invalid('provider', 'one of paystack, stripe, flutterwave'));
  END IF;
  SELECT * INTO a FROM accounts WHERE id = p_account;
  -- Only the caller's own wallet: anything else is word for word a missing account.
  IF NOT FOUND OR a.owner_id IS DISTINCT FROM p_owner OR a.kind <> 'user_wallet' THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('account %s not found', p_account)));
  END IF;
  IF a.currency <> p_currency THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error',
      format('account %s holds %s, not %s', p_account, a.currency, p_currency),
      jsonb_build_array(jsonb_build_object('field', 'currency', 'message', format('top up in %s', a.currency)))));
  END IF;
  IF a.status <> 'active' THEN
    RETURN jsonb_build_object('refusal', api_problem('conflict',
      format('account %s is %s; it cannot receive money', p_account, a.status)));
  END IF;
  INSERT INTO payments (id, reference, provider, owner_id, account_id, amount, currency)
  VALUES (v_id, 'LL-' || upper(replace(v_id::text, '-', '')), p_provider, p_owner, p_account, p_amount, p_currency)
  RETURNING * INTO p;
  PERFORM ledger_audit(p_actor => p_actor,
    p_rows => jsonb_build_array(p_audit || jsonb_build_object('resource_type', 'payment', 'after', payment_json(p))),
    p_resource_id => p.id::text, p_before => NULL, p_after => NULL);
  RETURN jsonb_build_object('payment', payment_json(p));
END $$;

-- Only money_op (SECURITY DEFINER, as the owner) calls it.
REVOKE ALL ON FUNCTION payment_open(uuid, uuid, numeric, text, text, jsonb, jsonb) FROM PUBLIC;
