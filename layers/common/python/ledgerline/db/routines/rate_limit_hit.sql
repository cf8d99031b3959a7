-- Count one request against each rate-limit check, in one atomic upsert; return the
-- checks it is over, with how long until their windows end.
--
-- p_checks: [{key, count, period, ...}] (ledgerline.auth.ratelimits.Check.to_json); keys
--   are distinct. A window starts at the first request of a key and lasts `period`
--   seconds; refused requests count too, so hammering never shortens a wait.
-- Rows are written in key order, so two callers never deadlock on each other's buckets.
-- The clock is clock_timestamp(), not now(): a caller whose transaction began before a
-- racing one opened the window, but reached the row after it, would otherwise see a
-- window longer than its period.
CREATE OR REPLACE FUNCTION rate_limit_hit(p_checks jsonb)
RETURNS TABLE (spec jsonb, hits integer, retry_after integer)
LANGUAGE sql SET search_path = public, pg_temp AS $$
  WITH counted AS (
    INSERT INTO rate_limit_buckets AS b (key, resets_at, hits)
    SELECT c->>'key', clock_timestamp() + make_interval(secs => (c->>'period')::int), 1
      FROM jsonb_array_elements(p_checks) c ORDER BY c->>'key'
    ON CONFLICT (key) DO UPDATE
       SET hits = CASE WHEN b.resets_at > clock_timestamp() THEN b.hits + 1 ELSE 1 END,
           resets_at = CASE WHEN b.resets_at > clock_timestamp() THEN b.resets_at ELSE excluded.resets_at END
    RETURNING b.key, b.hits, b.resets_at
  )
  SELECT c, n.hits,
         least((c->>'period')::int, greatest(1, ceil(extract(epoch FROM n.resets_at - clock_timestamp()))))::int
    FROM counted n JOIN jsonb_array_elements(p_checks) c ON c->>'key' = n.key
   WHERE n.hits > (c->>'count')::int;
$$;

REVOKE ALL ON FUNCTION rate_limit_hit(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rate_limit_hit(jsonb) TO ledgerline_app;
