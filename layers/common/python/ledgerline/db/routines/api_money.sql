-- A Money object: the amount in the currency's minor units, as text.
CREATE OR REPLACE FUNCTION api_money(p_amount numeric, p_currency text) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT jsonb_build_object('amount', round(p_amount, c.minor_units)::text, 'currency', p_currency)
    FROM currencies c WHERE c.code = p_currency;
$$;
