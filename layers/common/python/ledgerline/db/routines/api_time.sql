-- RFC 3339 in UTC with microseconds, exactly as ledgerline.jsonutil renders a datetime.
-- STABLE, as to_char is: PostgreSQL then inlines it into its callers' plans (declared
-- IMMUTABLE over a STABLE body, it was called, parsed and planned, on every use).
CREATE OR REPLACE FUNCTION api_time(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
$$;
