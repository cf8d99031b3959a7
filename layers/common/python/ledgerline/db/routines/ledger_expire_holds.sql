-- Expire up to p_limit active holds due at p_now (skipping holds being captured or voided
-- right now; the next sweep gets them if they are still active). Returns how many.
-- The scheduled expiry job calls it (ledgerline.ledger.holds.expire_due).
CREATE OR REPLACE FUNCTION ledger_expire_holds(p_now timestamptz, p_limit integer, p_actor jsonb, p_audit jsonb DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h holds;
  v_before jsonb;
  v_count integer := 0;
BEGIN
  FOR h IN
    SELECT * FROM holds WHERE status = 'active' AND expires_at <= p_now AND isfinite(expires_at)  -- pinned: never
     ORDER BY expires_at, id LIMIT p_limit FOR UPDATE SKIP LOCKED
  LOOP
    v_before := ledger_hold_json(h);
    UPDATE holds SET status = 'expired', resolved_at = clock_timestamp() WHERE id = h.id RETURNING * INTO h;
    IF p_audit IS NOT NULL THEN
      PERFORM ledger_audit(p_actor => p_actor, p_rows => p_audit, p_resource_id => h.id::text,
                           p_before => jsonb_build_object('hold', v_before),
                           p_after => jsonb_build_object('hold', ledger_hold_json(h)));
    END IF;
    v_count := v_count + 1;
  END LOOP;
  RETURN v_count;
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_expire_holds(timestamptz, integer, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_expire_holds(timestamptz, integer, jsonb, jsonb) TO ledgerline_app;
