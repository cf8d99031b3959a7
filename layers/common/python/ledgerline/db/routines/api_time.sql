-- RFC 3339 in UTC with microseconds, exactly as ledgerline.jsonutil renders a datetime.
CREATE OR REPLACE FUNCTION api_time(p_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
$$;
