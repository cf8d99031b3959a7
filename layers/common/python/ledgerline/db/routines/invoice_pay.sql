-- POST /v1/invoices/{id}/pay, inside money_op (one statement with the idempotency claim):
-- the buyer's money moves from p_account into a new escrow of this invoice, and the
-- invoice becomes PAID, or nothing at all happens ({"refusal": <problem>}).
--
-- The invoice row is locked first (FOR UPDATE): two payments of one invoice at once, from
-- two devices with two Idempotency-Keys, run one after the other, and the second finds it
-- PAID (409 invalid_state_transition). Then, through the escrow engine's own routines
-- (the SQL contract of issue 17): escrow_open (its ownerless account, AWAITING_PAYMENT,
-- audited escrow.created) and escrow_transition to FUNDED (buyer -> escrow account
-- through ledger_post, which checks the buyer's funds under its lock; audited
-- escrow.funded); then the invoice, PAID with escrow_id, audited with p_audit
-- (invoice.paid) before and after. A refusal of either escrow step (insufficient funds, a
-- frozen wallet, a suspended seller) undoes the escrow opened for it: the steps run in a
-- block whose exception rolls them back, so a refused payment leaves no escrow behind.
--
-- p_owner is the caller (the route is a user route). Not a party, or the invoice deleted:
-- 404, as for a missing one. The seller: 403 (the seller sees the invoice; only its buyer
-- pays it). p_account must be one of the buyer's wallets (else 404) in the invoice's
-- currency (else 422). p_version, when given, is the version of the invoice the buyer
-- agreed to: the seller may change a PENDING invoice up to the moment it is paid, so a
-- payment of a version that is no longer the invoice's is 409 conflict, and pays nothing.
CREATE OR REPLACE FUNCTION invoice_pay(p_invoice uuid, p_account uuid, p_owner uuid, p_actor jsonb, p_audit jsonb,
                                       p_version integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  i         invoices;
  a         accounts;
  v_before  jsonb;
  v_after   jsonb;
  v_step    jsonb;
  v_refusal jsonb;
  v_escrow  uuid;
  v_meta    jsonb := coalesce(p_audit->'metadata', '{}'::jsonb) || jsonb_build_object('invoice_id', p_invoice);
BEGIN
  SELECT * INTO i FROM invoices WHERE id = p_invoice FOR UPDATE;
  IF NOT FOUND OR i.deleted_at IS NOT NULL OR p_owner IS NULL OR p_owner NOT IN (i.buyer_id, i.seller_id) THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('invoice %s not found', p_invoice)));
  END IF;
  IF p_owner <> i.buyer_id THEN
    RETURN jsonb_build_object('refusal', api_problem('forbidden', 'only the buyer of an invoice pays it'));
  END IF;
  IF i.status NOT IN ('PENDING', 'OVERDUE') THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('invoice %s is %s; only a PENDING or OVERDUE invoice can be paid', i.number, i.status)));
  END IF;
  IF p_version IS NOT NULL AND p_version <> i.version THEN
    RETURN jsonb_build_object('refusal', api_problem('conflict',
      format('invoice %s has changed since version %s (it is at version %s, %s %s); read it again before paying',
             i.number, p_version, i.version, api_money(i.amount, i.currency)->>'amount', i.currency)));
  END IF;
  SELECT * INTO a FROM accounts WHERE id = p_account AND owner_id = p_owner;
  IF NOT FOUND OR a.kind <> 'user_wallet' THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('account %s not found', p_account)));
  END IF;
  IF a.currency <> i.currency THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error',
      format('invoice %s is in %s; pay it from a %s wallet', i.number, i.currency, i.currency),
      jsonb_build_array(jsonb_build_object('field', 'account_id', 'message', format('this wallet holds %s', a.currency)))));
  END IF;

  v_before := invoice_json(i);
  BEGIN
    v_step := escrow_open(
      p_buyer => i.buyer_id, p_seller => i.seller_id, p_currency => i.currency, p_amount => i.amount,
      p_description => format('Invoice %s', i.number), p_invoice => i.id, p_actor => p_actor,
      p_audit => jsonb_build_object('action', 'escrow.created', 'category', 'escrow', 'metadata', v_meta));
    IF v_step ? 'refusal' THEN
      v_refusal := v_step;
      RAISE EXCEPTION 'escrow refused' USING ERRCODE = 'LLRB0';
    END IF;
    v_escrow := (v_step->'escrow'->>'id')::uuid;
    v_step := escrow_transition(
      p_escrow => v_escrow, p_to => 'FUNDED', p_args => jsonb_build_object('party_id', p_owner, 'account_id', p_account),
      p_actor => p_actor,
      p_audit => jsonb_build_object('action', 'escrow.funded', 'category', 'escrow', 'metadata', v_meta));
    IF v_step ? 'refusal' THEN
      v_refusal := v_step;
      RAISE EXCEPTION 'escrow refused' USING ERRCODE = 'LLRB0';
    END IF;
  EXCEPTION WHEN SQLSTATE 'LLRB0' THEN
    RETURN v_refusal;  -- local variables survive the rollback of the block; its writes do not
  END;

  UPDATE invoices SET status = 'PAID', escrow_id = v_escrow WHERE id = i.id RETURNING * INTO i;
  v_after := invoice_json(i);
  PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(p_audit || jsonb_build_object(
            'resource_type', 'invoice', 'resource_id', i.id, 'subjects', jsonb_build_array(i.buyer_id, i.seller_id),
            'before', jsonb_build_object('invoice', v_before),
            'after', jsonb_build_object('invoice', v_after, 'account_id', p_account))),
          p_resource_id => i.id::text, p_before => NULL, p_after => NULL);
  RETURN jsonb_build_object('invoice', v_after);
END $$;

-- Callable by the application role (through money_call) and the owner, not by PUBLIC.
REVOKE ALL ON FUNCTION invoice_pay(uuid, uuid, uuid, jsonb, jsonb, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION invoice_pay(uuid, uuid, uuid, jsonb, jsonb, integer) TO ledgerline_app;
