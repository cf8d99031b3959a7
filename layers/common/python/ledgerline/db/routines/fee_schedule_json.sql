-- A fee schedule as the API shows it (docs/api.md, "Fee schedules"): amounts as Money in
-- the schedule's currency, percent as text with its four decimals. The before and after
-- payloads of the fee schedule audit rows are this shape too, so an auditor reads what an
-- administrator saw.
CREATE OR REPLACE FUNCTION fee_schedule_json(f fee_schedules) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'currency', f.currency,
    'transaction_kind', f.transaction_kind,
    'percent', f.percent::text,
    'fixed', api_money(f.fixed, f.currency),
    'minimum', api_money(f.minimum, f.currency),
    'maximum', CASE WHEN f.maximum IS NULL THEN NULL ELSE api_money(f.maximum, f.currency) END,
    'updated_by', f.updated_by,
    'updated_at', api_time(f.updated_at));
$$;

REVOKE ALL ON FUNCTION fee_schedule_json(fee_schedules) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fee_schedule_json(fee_schedules) TO ledgerline_app;
