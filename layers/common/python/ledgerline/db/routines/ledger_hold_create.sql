-- Place a hold: the amount stays on the account but is no longer available. The raising
-- form the Python domain calls (ledgerline.ledger.holds.create_hold) over its core,
-- ledger_hold_place: the hold as ledger_hold_json shows it, or the refusal raised.
-- p_audit is an array of audit rows; its first is the one written.
CREATE OR REPLACE FUNCTION ledger_hold_create(
  p_account uuid, p_currency text, p_amount numeric, p_expires_at timestamptz, p_actor jsonb,
  p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL, p_description text DEFAULT NULL, p_metadata jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v jsonb := ledger_hold_place(p_account => p_account, p_currency => p_currency, p_amount => p_amount,
                               p_expires_at => p_expires_at, p_actor => p_actor, p_audit => p_audit->0,
                               p_owner => p_owner, p_description => p_description, p_metadata => p_metadata);
BEGIN
  IF v ? 'refusal' THEN
    PERFORM ledger_raise(v->'refusal');
  END IF;
  RETURN ledger_hold_json(jsonb_populate_record(NULL::holds, v->'hold'));
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_hold_create(uuid, text, numeric, timestamptz, jsonb, jsonb, uuid, text,
                                          jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_hold_create(uuid, text, numeric, timestamptz, jsonb, jsonb, uuid, text,
                                             jsonb) TO ledgerline_app;
