-- The hold a hold route (POST /v1/holds/{id}/capture | /void) may resolve for this caller:
-- {"hold": <the row>}, or a refusal: 404 for a hold on someone else's account (as if it
-- did not exist), 409 for a hold a withdrawal placed, whoever asks. A withdrawal's hold is
-- resolved by the withdrawal alone (its approval, rejection or payout answer): voided by
-- hand while the payout is owed, the money would be spent twice.
CREATE OR REPLACE FUNCTION api_hold_target(p_hold uuid, p_owner uuid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
  SELECT coalesce(
    (SELECT CASE WHEN h.metadata ? 'withdrawal_id'
                 THEN jsonb_build_object('refusal', api_problem('invalid_state_transition',
                        format('hold %s belongs to withdrawal %s: it is resolved by the withdrawal''s approval, '
                               'rejection or payout', h.id, h.metadata->>'withdrawal_id')))
                 ELSE jsonb_build_object('hold', to_jsonb(h)) END
       FROM holds h JOIN accounts a ON a.id = h.account_id
      WHERE h.id = p_hold AND (p_owner IS NULL OR a.owner_id = p_owner)),
    jsonb_build_object('refusal', api_problem('not_found', format('hold %s not found', p_hold))));
$$;

-- Called only inside the SECURITY DEFINER money_op.
REVOKE ALL ON FUNCTION api_hold_target(uuid, uuid) FROM PUBLIC;
