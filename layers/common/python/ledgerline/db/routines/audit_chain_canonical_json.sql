-- The canonical text of a JSON value (docs/audit.md, "The canonical record"): objects with
-- their keys sorted by Unicode code point (COLLATE "C" compares UTF-8 bytes, which orders
-- alike), no whitespace anywhere, arrays in order; scalars as jsonb renders them (strings
-- escaped as to_json does; numbers as PostgreSQL numeric prints them: plain decimal, no
-- exponent, trailing zeros kept). ledgerline.audit_trail.canonical.canonical_json is the
-- same function in Python; a test holds them to the same bytes on awkward values.
-- Scalars are rendered inline (a recursive call costs more than the value): each nested
-- object or array costs one small query, so flat payloads are cheap.
CREATE OR REPLACE FUNCTION audit_chain_canonical_json(p_value jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  CASE jsonb_typeof(p_value)
    WHEN 'object' THEN
      RETURN '{' || coalesce((
        SELECT string_agg(to_jsonb(e.key)::text || ':' || CASE WHEN jsonb_typeof(e.value) IN ('object', 'array')
                 THEN audit_chain_canonical_json(e.value) ELSE e.value::text END, ',' ORDER BY e.key COLLATE "C")
          FROM jsonb_each(p_value) AS e), '') || '}';
    WHEN 'array' THEN
      RETURN '[' || coalesce((
        SELECT string_agg(CASE WHEN jsonb_typeof(a.value) IN ('object', 'array')
                 THEN audit_chain_canonical_json(a.value) ELSE a.value::text END, ',' ORDER BY a.n)
          FROM jsonb_array_elements(p_value) WITH ORDINALITY AS a(value, n)), '') || ']';
    ELSE
      RETURN p_value::text;
  END CASE;
END $$;

REVOKE ALL ON FUNCTION audit_chain_canonical_json(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_chain_canonical_json(jsonb) TO ledgerline_app;
