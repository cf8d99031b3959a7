-- The hold a caller may resolve by hand (the hold routes, POST /v1/holds/{id}/capture |
-- /void, and the raising forms the Python domain calls, ledger_hold_void and
-- ledger_hold_capture): {"hold": <the row>}, or a refusal: 404 for a hold on someone else's
-- account (as if it did not exist), 409 for a withdrawal's hold (withdrawal_owns), whoever asks.
CREATE OR REPLACE FUNCTION api_hold_target(p_hold uuid, p_owner uuid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
  SELECT coalesce(
    (SELECT coalesce(withdrawal_owns(p_hold => h.id), jsonb_build_object('hold', to_jsonb(h)))
       FROM holds h JOIN accounts a ON a.id = h.account_id
      WHERE h.id = p_hold AND (p_owner IS NULL OR a.owner_id = p_owner)),
    jsonb_build_object('refusal', api_problem('not_found', format('hold %s not found', p_hold))));
$$;

-- Called only inside SECURITY DEFINER functions (money_op, ledger_hold_void, ledger_hold_capture).
REVOKE ALL ON FUNCTION api_hold_target(uuid, uuid) FROM PUBLIC;
