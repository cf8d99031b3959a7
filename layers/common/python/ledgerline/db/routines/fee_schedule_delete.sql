-- DELETE /v1/admin/fees/{currency}/{transaction_kind}: remove one fee schedule (that kind
-- is then charged no fee in that currency) and write its audit row, whose before is the
-- schedule removed, in the same transaction. A schedule that is not there is LLNF0 and
-- writes nothing.
CREATE OR REPLACE FUNCTION fee_schedule_delete(p_currency text, p_kind text, p_actor jsonb, p_audit jsonb)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  f fee_schedules;
BEGIN
  DELETE FROM fee_schedules WHERE currency = p_currency AND transaction_kind = p_kind RETURNING * INTO f;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no fee schedule for % %', p_currency, p_kind USING ERRCODE = 'LLNF0';
  END IF;
  PERFORM ledger_audit(p_actor => p_actor,
                       p_rows => jsonb_build_array(p_audit || jsonb_build_object(
                         'resource_type', 'fee_schedule', 'before', fee_schedule_json(f))),
                       p_resource_id => f.currency || '/' || f.transaction_kind, p_before => NULL, p_after => NULL);
  RETURN fee_schedule_json(f);
END $$;

REVOKE ALL ON FUNCTION fee_schedule_delete(text, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fee_schedule_delete(text, text, jsonb, jsonb) TO ledgerline_app;
