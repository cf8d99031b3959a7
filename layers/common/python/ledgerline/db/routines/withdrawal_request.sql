-- POST /v1/withdrawals, inside money_op (one statement with the idempotency claim):
-- hold the amount on the caller's wallet and record the withdrawal as requested, with
-- one audit row (p_audit), or say why not ({"refusal": <problem>}, nothing written).
--
-- p_args (ledgerline.payments.withdrawals.request_arguments): id (minted by the caller,
-- so the destination could be encrypted bound to this row), account_id, amount (text),
-- currency, provider, hold_expires_in_seconds, owner_id, step_up {"required", "passed"}
-- and destination {bank_code, account_name, account_number_ciphertext (hex),
-- account_number_blind_index (hex), account_number_last4}: the account number arrives
-- sealed; its plaintext never reaches the database. Or, in place of destination,
-- payout_account_id and cooling_off {hours, limit} (issue 19): the destination is that
-- payout account of the owner's (payout_account_destination: 404, cooling-off 409), and
-- the withdrawal refers to it instead of holding a ciphertext of its own.
--
-- The second factor is checked in Python before this statement (a TOTP code is spent
-- in a transaction of its own); step_up says what was checked. A withdrawal that needed
-- it and did not pass it is refused here too, so a path that skips the check (a replay
-- whose stored answer expired in between) cannot create one.
CREATE OR REPLACE FUNCTION withdrawal_request(p_args jsonb, p_actor jsonb, p_audit jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_owner  uuid := (p_args->>'owner_id')::uuid;
  v_dest   jsonb := p_args->'destination';
  v_amount jsonb;
  v_hold   jsonb;
  v_kind   text;
  w        withdrawals;
BEGIN
  IF (p_args->'step_up'->>'required')::boolean AND NOT coalesce((p_args->'step_up'->>'passed')::boolean, false) THEN
    RETURN jsonb_build_object('refusal', api_problem('unauthorized',
      'this withdrawal needs a second factor: send a current code of your authenticator app as "otp"')
      || '{"code": "otp_required", "title": "A one-time password is required", "type": "https://docs.ledgerline.dev/problems/otp-required"}');
  END IF;
  v_amount := ledger_amount(p_text => p_args->>'amount', p_currency => p_args->>'currency');
  IF v_amount ? 'problem' THEN
    RETURN jsonb_build_object('refusal', v_amount->'problem');
  END IF;
  IF EXISTS (SELECT 1 FROM withdrawals WHERE id = (p_args->>'id')::uuid) THEN
    RETURN jsonb_build_object('refusal', api_problem('conflict', format('withdrawal %s already exists', p_args->>'id')));
  END IF;
  SELECT a.kind INTO v_kind FROM accounts a WHERE a.id = (p_args->>'account_id')::uuid AND a.owner_id = v_owner;
  IF NOT FOUND OR v_kind <> 'user_wallet' THEN  -- only a wallet pays out; anything else is not the caller's to say
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('account %s not found', p_args->>'account_id')));
  END IF;
  IF p_args ? 'payout_account_id' THEN
    v_dest := payout_account_destination(p_payout_account => (p_args->>'payout_account_id')::uuid, p_owner => v_owner,
                                         p_amount => (v_amount->>'amount')::numeric, p_cooling => p_args->'cooling_off');
    IF v_dest ? 'refusal' THEN
      RETURN v_dest;
    END IF;
    v_dest := v_dest->'destination';
  END IF;
  v_hold := ledger_hold_place(
    p_account => (p_args->>'account_id')::uuid, p_currency => p_args->>'currency',
    p_amount => (v_amount->>'amount')::numeric,
    p_expires_at => clock_timestamp() + (p_args->>'hold_expires_in_seconds')::integer * interval '1 second',
    p_actor => p_actor, p_owner => v_owner, p_description => format('withdrawal %s', p_args->>'id'),
    p_metadata => jsonb_build_object('withdrawal_id', p_args->>'id'));
  IF v_hold ? 'refusal' THEN
    RETURN v_hold;
  END IF;
  INSERT INTO withdrawals (id, user_id, account_id, currency, amount, hold_id, provider, bank_code, account_name,
                           account_number_ciphertext, account_number_blind_index, account_number_last4, step_up,
                           payout_account_id)
  VALUES ((p_args->>'id')::uuid, v_owner, (p_args->>'account_id')::uuid, p_args->>'currency',
          (v_amount->>'amount')::numeric, (v_hold->'hold'->>'id')::uuid,
          coalesce(v_dest->>'provider', p_args->>'provider'), v_dest->>'bank_code',
          v_dest->>'account_name', decode(v_dest->>'account_number_ciphertext', 'hex'),
          decode(v_dest->>'account_number_blind_index', 'hex'), v_dest->>'account_number_last4',
          CASE WHEN (p_args->'step_up'->>'passed')::boolean THEN 'otp' ELSE 'none' END,
          (v_dest->>'payout_account_id')::uuid)
  RETURNING * INTO w;
  PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(p_audit || jsonb_build_object(
            'resource_type', 'withdrawal', 'resource_id', w.id,
            'after', jsonb_build_object('withdrawal', withdrawal_json(w),
                                        'hold', ledger_hold_json(jsonb_populate_record(NULL::holds, v_hold->'hold'))))),
          p_resource_id => w.id::text, p_before => NULL, p_after => NULL);
  RETURN jsonb_build_object('withdrawal', withdrawal_json(w));
END $$;

-- Callable by the application role (through money_call) and the owner, not by PUBLIC.
REVOKE ALL ON FUNCTION withdrawal_request(jsonb, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION withdrawal_request(jsonb, jsonb, jsonb) TO ledgerline_app;
