-- Open an escrow: its own ledger account (kind 'escrow', no owner: no user can move its
-- money through /v1/transfers or /v1/holds, and it counts against nobody's account cap)
-- and the escrow row, AWAITING_PAYMENT; one audit row (p_audit, e.g. escrow.created,
-- when given) in the same transaction. Nothing moves: the buyer funds it afterwards
-- (escrow_transition to FUNDED), or the invoice's payment does, in its own statement.
-- Returns {"escrow": <escrow_json>} or {"refusal": <problem>} (nothing written).
--
-- p_amount is a number already parsed (ledger_amount, for the routes); it must be
-- positive and a whole number of the currency's minor units. The seller must be an
-- active user other than the buyer. p_invoice: the invoice paid into it, if any.
CREATE OR REPLACE FUNCTION escrow_open(
  p_buyer uuid, p_seller uuid, p_currency text, p_amount numeric, p_description text, p_invoice uuid,
  p_actor jsonb, p_audit jsonb
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_id      uuid := gen_random_uuid();
  v_account uuid;
  v_units   smallint;
  e         escrows;
BEGIN
  SELECT c.minor_units INTO v_units FROM currencies c WHERE c.code = p_currency;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error', format('%s is not a ledger currency', p_currency),
      jsonb_build_array(jsonb_build_object('field', 'currency', 'message', 'use a currency the ledger holds'))));
  END IF;
  IF p_amount IS NULL OR p_amount <= 0 OR p_amount <> round(p_amount, v_units) OR p_amount >= 1e15 THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error',
      format('amount must be positive, in whole %s minor units (%s decimals)', p_currency, v_units),
      jsonb_build_array(jsonb_build_object('field', 'amount', 'message', 'a positive amount the currency can hold'))));
  END IF;
  IF length(btrim(coalesce(p_description, ''))) NOT BETWEEN 1 AND 500 THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error', 'a description is required',
      jsonb_build_array(jsonb_build_object('field', 'description', 'message', 'say what is bought, in 1 to 500 characters'))));
  END IF;
  IF p_buyer IS NULL OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = p_buyer AND u.status = 'active') THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('user %s not found', p_buyer)));
  END IF;
  IF p_seller IS NOT DISTINCT FROM p_buyer THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error', 'the seller cannot be the buyer',
      jsonb_build_array(jsonb_build_object('field', 'seller_id', 'message', 'name another user as the seller'))));
  END IF;
  -- A missing and a suspended seller are one answer: it tells nothing about another user.
  IF NOT EXISTS (SELECT 1 FROM users u WHERE u.id = p_seller AND u.status = 'active') THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error', format('seller %s cannot be paid', p_seller),
      jsonb_build_array(jsonb_build_object('field', 'seller_id', 'message', 'no active user with this id'))));
  END IF;

  INSERT INTO accounts (kind, owner_id, currency, may_go_negative, hot, name, metadata)
  VALUES ('escrow', NULL, p_currency, false, false, 'Escrow ' || v_id, jsonb_build_object('escrow_id', v_id))
  RETURNING id INTO v_account;
  INSERT INTO escrows (id, buyer_id, seller_id, currency, amount, description, account_id, invoice_id, created_by)
  VALUES (v_id, p_buyer, p_seller, p_currency, p_amount, btrim(p_description), v_account, p_invoice,
          coalesce((p_actor->>'id')::uuid, p_buyer))
  RETURNING * INTO e;

  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(p_audit || jsonb_build_object(
              'resource_type', 'escrow', 'resource_id', e.id, 'subjects', jsonb_build_array(e.buyer_id, e.seller_id),
              'after', jsonb_build_object('escrow', escrow_json(e)))),
            p_resource_id => e.id::text, p_before => NULL, p_after => NULL);
  END IF;
  -- Its opener is its buyer: what the buyer may do with it (fund it).
  RETURN jsonb_build_object('escrow', escrow_json(e) || jsonb_build_object(
    'allowed_transitions', escrow_allowed(e => e, p_party => 'buyer', p_window => NULL)));
END $$;

-- Callable by the application role (POST /v1/escrows, an invoice's payment) and the owner.
REVOKE ALL ON FUNCTION escrow_open(uuid, uuid, text, numeric, text, uuid, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION escrow_open(uuid, uuid, text, numeric, text, uuid, jsonb, jsonb) TO ledgerline_app;
