-- A Money object: the amount in the currency's minor units, as text.
--
-- PL/pgSQL, not SQL: a SQL function that reads a table is not inlined, and PostgreSQL 16
-- parses and plans its body on every call; PL/pgSQL keeps the plan.
CREATE OR REPLACE FUNCTION api_money(p_amount numeric, p_currency text) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  v_units smallint;
BEGIN
  SELECT c.minor_units INTO v_units FROM currencies c WHERE c.code = p_currency;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  RETURN jsonb_build_object('amount', round(p_amount, v_units)::text, 'currency', p_currency);
END $$;
