-- Retention of the audit trail in PostgreSQL (issue 15): the last p_keep_months months
-- stay hot; an older monthly partition of audit_log leaves the database, detached and
-- dropped whole, only when every one of its rows is
--   * chained (audit_chain), in a batch the shipper marked shipped (audit_ship_batches), and
--   * at or below the chain position `audit verify` last proved (audit_log_verified).
-- Rows are never deleted one by one: audit_log refuses DELETE for every role. A partition
-- that does not qualify stays, and the answer says why. Also creates the monthly
-- partitions of the next p_ahead_months months (audit_log's row triggers apply to them as
-- to every partition), so rows keep landing in their month rather than in the default
-- partition.
--
-- Detaching takes an ACCESS EXCLUSIVE lock on audit_log for a moment (every audited write
-- waits); lock_timeout keeps it from queueing behind a long transaction with every writer
-- queued behind it: it fails instead, and is run again later.
-- p_now is the clock it reads (tests move it forward). Owner only: the application role can neither call it nor detach a partition.
-- Returns {"detached": [name, ...], "kept": [{"partition", "reason"}], "created": [name, ...]}.
CREATE OR REPLACE FUNCTION audit_log_retire(p_keep_months integer DEFAULT 3, p_ahead_months integer DEFAULT 12,
                                            p_now timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
  v_month    date := date_trunc('month', p_now AT TIME ZONE 'UTC')::date;
  v_cutoff   timestamptz := (v_month - make_interval(months => p_keep_months))::timestamp AT TIME ZONE 'UTC';
  v_verified bigint := coalesce((SELECT max(through_seq) FROM audit_log_verified), 0);
  v_detached jsonb := '[]';
  v_kept     jsonb := '[]';
  v_created  jsonb := '[]';
  v_from     date;
  v_name     text;
  v_counts   record;
  p          record;
BEGIN
  IF p_keep_months IS NULL OR p_keep_months < 1 OR p_ahead_months IS NULL OR p_ahead_months < 0 OR p_now IS NULL THEN
    RAISE EXCEPTION 'keep at least one month hot (p_keep_months >= 1) and create none or more ahead'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- One retirement at a time (a second one waits), and no partition changes under it.
  LOCK TABLE audit_log IN SHARE UPDATE EXCLUSIVE MODE;

  FOR p IN
    SELECT c.relname AS name,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'audit_log'::regclass AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
     ORDER BY 2
  LOOP
    CONTINUE WHEN p.upper_bound IS NULL OR p.upper_bound > v_cutoff;
    EXECUTE format(
      'SELECT count(*) FILTER (WHERE c.seq IS NULL) AS unchained,
              count(*) FILTER (WHERE b.shipped_at IS NULL AND c.seq IS NOT NULL) AS unshipped,
              count(*) FILTER (WHERE c.seq > $1) AS unverified
         FROM %I a
         LEFT JOIN audit_chain c ON c.audit_id = a.id
         LEFT JOIN audit_ship_batches b ON b.first_seq = c.batch', p.name)
      INTO v_counts USING v_verified;
    IF v_counts.unchained > 0 OR v_counts.unshipped > 0 OR v_counts.unverified > 0 THEN
      v_kept := v_kept || jsonb_build_object('partition', p.name, 'reason', format(
        '%s rows not chained yet, %s not shipped, %s past the last verification (seq %s)',
        v_counts.unchained, v_counts.unshipped, v_counts.unverified, v_verified));
    ELSE
      EXECUTE format('ALTER TABLE audit_log DETACH PARTITION %I', p.name);
      EXECUTE format('DROP TABLE %I', p.name);
      v_detached := v_detached || to_jsonb(p.name);
    END IF;
  END LOOP;

  FOR i IN 0..p_ahead_months LOOP
    v_from := (v_month + make_interval(months => i))::date;
    v_name := 'audit_log_p' || to_char(v_from, 'YYYY_MM');
    -- A month that already has rows in the default partition (nobody made it in time) is
    -- left there: making it would have to move them. The answer names it.
    IF to_regclass(v_name) IS NULL AND EXISTS (
         SELECT 1 FROM audit_log_p_default
          WHERE occurred_at >= v_from::timestamp AT TIME ZONE 'UTC'
            AND occurred_at < (v_from + interval '1 month')::timestamp AT TIME ZONE 'UTC') THEN
      v_kept := v_kept || jsonb_build_object('partition', v_name, 'reason',
        'not created: the default partition already holds rows of this month');
      CONTINUE;
    END IF;
    CONTINUE WHEN to_regclass(v_name) IS NOT NULL
      -- a month the initial partition (or any other) already covers
      OR EXISTS (
        SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'audit_log'::regclass
           AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
               > v_from::timestamp AT TIME ZONE 'UTC'
           AND coalesce((regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
                        '-infinity') <= v_from::timestamp AT TIME ZONE 'UTC');
    EXECUTE format('CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%L) TO (%L)', v_name,
                   v_from::timestamp AT TIME ZONE 'UTC', (v_from + interval '1 month')::timestamp AT TIME ZONE 'UTC');
    v_created := v_created || to_jsonb(v_name);
  END LOOP;

  RETURN jsonb_build_object('detached', v_detached, 'kept', v_kept, 'created', v_created);
END $$;

REVOKE ALL ON FUNCTION audit_log_retire(integer, integer, timestamptz) FROM PUBLIC;
