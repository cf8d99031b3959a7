-- reconcile_compare: one run's staged gateway report against the ledger's payments of the
-- same provider and UTC day, in one set-based pass; writes the findings and returns the
-- run's counts and per-currency totals.
--
-- The ledger side is the provider's payments created in [day - grace, day + 1 + grace):
-- a payment opened just before midnight may be paid (and reported) just after it. Only a
-- payment created inside the day itself is expected in this day's report (a credited one
-- missing from it is MISSING_IN_GATEWAY); those of the grace margins belong to the
-- neighbouring days' reports and are only used to match.
--
-- Amounts are compared at the currency's minor units (currencies.minor_units): the
-- gateway reports minor units, the adapter turned them into major units, both sides are
-- rounded to the currency's precision before comparing. FEE_MISMATCH: the ledger records
-- no fee, so a reported fee is compared with the contracted schedule's fee for the amount
-- (expected_fee, staged by ledgerline.reconciliation.fees), to the currency's minor unit.
--
-- Idempotent: a finding is unique on (provider, day, kind, reference); a re-run marks it
-- seen by the new run (last_run_id) and refreshes what each side says, and never touches
-- its status (an admin's). The caller serialises runs of one (provider, day).
CREATE OR REPLACE FUNCTION reconcile_compare(p_run uuid, p_grace interval) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_provider text;
  v_day date;
  v_from timestamptz;
  v_to timestamptz;
  v_found bigint;
  v_result jsonb;
BEGIN
  SELECT provider, day INTO v_provider, v_day FROM reconciliation_runs WHERE id = p_run;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no reconciliation run %', p_run USING ERRCODE = 'LLNF0';
  END IF;
  v_from := (v_day::timestamp AT TIME ZONE 'UTC');
  v_to := ((v_day + 1)::timestamp AT TIME ZONE 'UTC');

  WITH staged AS (
    SELECT s.*, count(*) OVER (PARTITION BY s.reference) AS copies,
           row_number() OVER (PARTITION BY s.reference ORDER BY (s.status = 'succeeded') DESC, s.provider_id) AS nth
      FROM reconciliation_staging s WHERE s.run_id = p_run
  ), g AS (
    SELECT * FROM staged WHERE nth = 1
  ), l AS (
    SELECT p.id, p.reference, p.amount, p.currency, p.status, p.created_at
      FROM payments p
     WHERE p.provider = v_provider AND p.created_at >= v_from - p_grace AND p.created_at < v_to + p_grace
  ), joined AS (
    SELECT g.reference AS g_reference, g.amount AS g_amount, g.currency AS g_currency, g.status AS g_status,
           g.fee AS g_fee, g.expected_fee, g.copies,
           l.id AS payment_id, l.reference AS l_reference, l.amount AS l_amount, l.currency AS l_currency,
           l.status AS l_status, l.created_at AS l_created,
           gc.minor_units AS g_minor
      FROM g FULL JOIN l ON l.reference = g.reference
      LEFT JOIN currencies gc ON gc.code = g.currency
  ), findings AS (
    SELECT kind, j.*
      FROM joined j
     CROSS JOIN LATERAL (VALUES
       (CASE WHEN j.copies > 1 THEN 'DUPLICATE_IN_GATEWAY' END),
       (CASE WHEN j.g_status = 'succeeded' AND (j.l_status IS DISTINCT FROM 'succeeded') THEN 'MISSING_IN_LEDGER' END),
       (CASE WHEN j.g_reference IS NULL AND j.l_status = 'succeeded'
              AND j.l_created >= v_from AND j.l_created < v_to THEN 'MISSING_IN_GATEWAY' END),
       (CASE WHEN j.l_status = 'succeeded' AND j.g_status IN ('failed', 'reversed') THEN 'STATUS_MISMATCH' END),
       (CASE WHEN j.l_status = 'succeeded' AND j.g_status = 'succeeded' AND j.g_currency <> j.l_currency
             THEN 'CURRENCY_MISMATCH' END),
       (CASE WHEN j.l_status = 'succeeded' AND j.g_status = 'succeeded' AND j.g_currency = j.l_currency
              AND round(j.g_amount, j.g_minor) <> round(j.l_amount, j.g_minor) THEN 'AMOUNT_MISMATCH' END),
       (CASE WHEN j.g_status = 'succeeded' AND j.g_fee IS NOT NULL AND j.expected_fee IS NOT NULL
              AND round(j.g_fee, j.g_minor) <> round(j.expected_fee, j.g_minor) THEN 'FEE_MISMATCH' END)
     ) AS k(kind)
     WHERE kind IS NOT NULL
  )
  INSERT INTO reconciliation_discrepancies AS d (
    run_id, last_run_id, provider, day, kind, reference, payment_id,
    gateway_amount, gateway_currency, gateway_status, gateway_fee, expected_fee, gateway_count,
    ledger_amount, ledger_currency, ledger_status)
  SELECT p_run, p_run, v_provider, v_day, f.kind, coalesce(f.g_reference, f.l_reference), f.payment_id,
         f.g_amount, f.g_currency, f.g_status, f.g_fee, f.expected_fee, f.copies,
         f.l_amount, f.l_currency, f.l_status
    FROM findings f
  ON CONFLICT ON CONSTRAINT reconciliation_discrepancies_once DO UPDATE
    SET last_run_id = EXCLUDED.last_run_id, payment_id = EXCLUDED.payment_id,
        gateway_amount = EXCLUDED.gateway_amount, gateway_currency = EXCLUDED.gateway_currency,
        gateway_status = EXCLUDED.gateway_status, gateway_fee = EXCLUDED.gateway_fee,
        expected_fee = EXCLUDED.expected_fee, gateway_count = EXCLUDED.gateway_count,
        ledger_amount = EXCLUDED.ledger_amount, ledger_currency = EXCLUDED.ledger_currency,
        ledger_status = EXCLUDED.ledger_status, updated_at = clock_timestamp();
  GET DIAGNOSTICS v_found = ROW_COUNT;

  SELECT jsonb_build_object(
           'gateway_count', (SELECT count(*) FROM reconciliation_staging WHERE run_id = p_run),
           'ledger_count', (SELECT count(*) FROM payments p WHERE p.provider = v_provider
                              AND p.created_at >= v_from AND p.created_at < v_to),
           'discrepancy_count', v_found,
           'totals', coalesce((
             SELECT jsonb_object_agg(currency, jsonb_build_object('gateway', gateway::text, 'ledger', ledger::text))
               FROM (
                 SELECT currency, sum(gateway) AS gateway, sum(ledger) AS ledger FROM (
                   SELECT s.currency, s.amount AS gateway, 0 AS ledger
                     FROM reconciliation_staging s WHERE s.run_id = p_run AND s.status = 'succeeded'
                   UNION ALL
                   SELECT p.currency, 0, p.amount FROM payments p
                    WHERE p.provider = v_provider AND p.status = 'succeeded'
                      AND p.created_at >= v_from AND p.created_at < v_to
                 ) both_sides GROUP BY currency
               ) t), '{}'::jsonb))
    INTO v_result;
  RETURN v_result;
END;
$$;

REVOKE ALL ON FUNCTION reconcile_compare(uuid, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reconcile_compare(uuid, interval) TO ledgerline_app;
