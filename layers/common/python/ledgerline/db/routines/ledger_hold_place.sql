-- Place a hold, or say why not: {"hold": <row as jsonb>} or {"refusal": <problem>}.
-- The amount stays on the account but is no longer available (available = posted -
-- held); the account's balance row is locked first, so the funds check and the hold
-- are one step under concurrency.
CREATE OR REPLACE FUNCTION ledger_hold_place(
  p_account uuid, p_currency text, p_amount numeric, p_expires_at timestamptz, p_actor jsonb,
  p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL, p_description text DEFAULT NULL, p_metadata jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h holds;
  r record;
BEGIN
  PERFORM 1 FROM balances b WHERE b.account_id = p_account AND NOT b.hot FOR UPDATE;
  SELECT ac.currency, ac.status, ac.owner_id, ac.kind, b.hot, b.posted, b.held INTO r
    FROM accounts ac JOIN balances b ON b.account_id = ac.id WHERE ac.id = p_account;
  IF NOT FOUND OR (p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner) THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('account %s not found', p_account)));
  END IF;
  IF r.hot OR r.kind = 'escrow' THEN  -- an escrow's money moves only by its transitions
    RETURN jsonb_build_object('refusal', api_problem('validation_error', 'holds are placed on wallet accounts only'));
  END IF;
  IF r.currency <> p_currency THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error',
      format('account %s holds %s, not %s', p_account, r.currency, p_currency)));
  END IF;
  IF r.status <> 'active' THEN
    RETURN jsonb_build_object('refusal', api_problem('conflict',
      format('account %s is %s; no new holds can be placed on it', p_account, r.status)));
  END IF;
  IF r.posted - r.held < p_amount THEN
    RETURN jsonb_build_object('refusal', api_problem('insufficient_funds',
      format('account %s has %s %s available; this hold needs %s', p_account, r.posted - r.held, r.currency, p_amount)));
  END IF;
  INSERT INTO holds (account_id, currency, amount, expires_at, description, metadata, actor_id)
  VALUES (p_account, p_currency, p_amount, p_expires_at, p_description, coalesce(p_metadata, '{}'::jsonb),
          (p_actor->>'id')::uuid)
  RETURNING * INTO h;
  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(
      p_actor => p_actor, p_rows => jsonb_build_array(p_audit), p_resource_id => h.id::text,
      p_before => jsonb_build_object('balance', jsonb_build_object('posted', r.posted, 'held', r.held)),
      p_after => jsonb_build_object('hold', ledger_hold_json(h),
                                    'balance', jsonb_build_object('posted', r.posted, 'held', r.held + p_amount)));
  END IF;
  RETURN jsonb_build_object('hold', to_jsonb(h));
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_hold_place(uuid, text, numeric, timestamptz, jsonb, jsonb, uuid, text,
                                         jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_hold_place(uuid, text, numeric, timestamptz, jsonb, jsonb, uuid, text,
                                            jsonb) TO ledgerline_app;
