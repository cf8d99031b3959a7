-- Python's repr() of a string, for messages that quote what the caller sent.
CREATE OR REPLACE FUNCTION ledger_repr(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN position('''' IN p_text) > 0 AND position('"' IN p_text) = 0
              THEN '"' || ledger_repr_escape(p_text) || '"'
              ELSE '''' || replace(ledger_repr_escape(p_text), '''', '\''') || '''' END;
$$;
