-- Void an active hold (its amount is available again; nothing moves), or say why not.
-- The reason is kept on the hold and in the audit trail.
CREATE OR REPLACE FUNCTION ledger_hold_release(
  p_hold uuid, p_actor jsonb, p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL, p_reason text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h holds;
  v_before jsonb;
BEGIN
  SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
  IF NOT FOUND OR (p_owner IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM accounts WHERE id = h.account_id AND owner_id = p_owner)) THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('hold %s not found', p_hold)));
  END IF;
  IF h.status <> 'active' THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('hold %s is %s; only an active hold can be voided', p_hold, h.status)));
  END IF;
  v_before := ledger_hold_json(h);
  UPDATE holds SET status = 'voided', resolved_at = clock_timestamp(),
                   metadata = CASE WHEN p_reason IS NULL THEN metadata
                                   ELSE metadata || jsonb_build_object('void_reason', p_reason) END
   WHERE id = p_hold RETURNING * INTO h;
  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor => p_actor,
                         p_rows => jsonb_build_array(p_audit || jsonb_build_object('metadata',
                           coalesce(p_audit->'metadata', '{}'::jsonb) || jsonb_strip_nulls(jsonb_build_object('reason', p_reason)))),
                         p_resource_id => h.id::text, p_before => jsonb_build_object('hold', v_before),
                         p_after => jsonb_build_object('hold', ledger_hold_json(h)));
  END IF;
  RETURN jsonb_build_object('hold', to_jsonb(h));
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_hold_release(uuid, jsonb, jsonb, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_hold_release(uuid, jsonb, jsonb, uuid, text) TO ledgerline_app;
