-- PUT /v1/admin/fees: create or replace the fee schedule of one currency and transaction
-- kind, and write its audit row (before: the schedule it replaced, or null; after: the new
-- one) in the same transaction. The application role only reads fee_schedules: this is
-- the one way a schedule is written. ledgerline.fees has checked the request already
-- (amounts in the currency's minor units, a known kind); the checks here are what the
-- table cannot say by itself, so that no caller can store a schedule the API would refuse.
-- Two administrators at once: a transaction-scoped advisory lock on the (currency, kind)
-- orders them, the first creation of a schedule included (no row to lock yet), so each
-- audit row's before is what that change really replaced.
CREATE OR REPLACE FUNCTION fee_schedule_put(
  p_currency text, p_kind text, p_percent numeric, p_fixed numeric, p_minimum numeric, p_maximum numeric,
  p_actor jsonb, p_audit jsonb
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_units  smallint;
  v_before jsonb;
  f        fee_schedules;
BEGIN
  SELECT minor_units INTO v_units FROM currencies WHERE code = p_currency;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'currency % is not supported', p_currency USING ERRCODE = 'LLVL0';
  END IF;
  IF p_percent IS NULL OR p_percent < 0 OR p_percent > 100 OR p_percent <> round(p_percent, 4) THEN
    RAISE EXCEPTION 'percent must be between 0 and 100 with at most 4 decimals' USING ERRCODE = 'LLVL0';
  END IF;
  IF p_fixed IS NULL OR p_minimum IS NULL OR p_fixed < 0 OR p_minimum < 0 OR p_maximum < 0
     OR p_fixed <> round(p_fixed, v_units) OR p_minimum <> round(p_minimum, v_units)
     OR p_maximum <> round(p_maximum, v_units) THEN
    RAISE EXCEPTION 'fixed, minimum and maximum are amounts of % with at most % decimals', p_currency, v_units
      USING ERRCODE = 'LLVL0';
  END IF;
  IF p_maximum < p_minimum THEN
    RAISE EXCEPTION 'maximum must not be less than minimum' USING ERRCODE = 'LLVL0';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('fee_schedule:' || p_currency || '/' || p_kind));
  SELECT fee_schedule_json(s) INTO v_before FROM fee_schedules s
   WHERE s.currency = p_currency AND s.transaction_kind = p_kind;
  INSERT INTO fee_schedules AS s (currency, transaction_kind, percent, fixed, minimum, maximum, updated_by, updated_at)
  VALUES (p_currency, p_kind, p_percent, p_fixed, p_minimum, p_maximum, (p_actor->>'id')::uuid, clock_timestamp())
  ON CONFLICT (currency, transaction_kind) DO UPDATE
     SET percent = EXCLUDED.percent, fixed = EXCLUDED.fixed, minimum = EXCLUDED.minimum,
         maximum = EXCLUDED.maximum, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
  RETURNING * INTO f;
  PERFORM ledger_audit(p_actor => p_actor,
                       p_rows => jsonb_build_array(p_audit
                         || jsonb_build_object('resource_type', 'fee_schedule', 'after', fee_schedule_json(f))
                         -- a new schedule has no before (SQL NULL, not a JSON null)
                         || CASE WHEN v_before IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('before', v_before) END),
                       p_resource_id => f.currency || '/' || f.transaction_kind, p_before => NULL, p_after => NULL);
  RETURN fee_schedule_json(f);
END $$;

REVOKE ALL ON FUNCTION fee_schedule_put(text, text, numeric, numeric, numeric, numeric, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fee_schedule_put(text, text, numeric, numeric, numeric, numeric, jsonb, jsonb)
  TO ledgerline_app;
