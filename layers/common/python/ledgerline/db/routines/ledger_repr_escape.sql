-- The backslash escapes of Python's repr() of a string (ledger_repr quotes the result).
CREATE OR REPLACE FUNCTION ledger_repr_escape(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT replace(replace(replace(replace(p_text, '\', '\\'), E'\n', '\n'), E'\r', '\r'), E'\t', '\t');
$$;
