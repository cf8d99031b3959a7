-- An amount sent as text in major units (ledgerline.money.parse_amount, word for word):
-- {"amount": n} or {"problem": ...}.
CREATE OR REPLACE FUNCTION ledger_amount(p_text text, p_currency text, p_field text DEFAULT 'amount',
                              p_allow_zero boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_units smallint;
  v_places integer;
BEGIN
  SELECT minor_units INTO v_units FROM currencies WHERE code = p_currency;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('problem', api_problem('validation_error', format('currency %L is not supported', p_currency),
      jsonb_build_array(jsonb_build_object('field', 'currency', 'message', 'use an ISO 4217 code, one of '
        || (SELECT string_agg(code, ', ' ORDER BY code) FROM currencies)))));
  END IF;
  IF p_text IS NULL THEN
    RETURN jsonb_build_object('problem', api_invalid(p_field,
      'send the amount as a string, e.g. "150.00", not as a JSON number'));
  END IF;
  IF p_text !~ '^(0|[1-9][0-9]*)(\.[0-9]+)?$' THEN
    RETURN jsonb_build_object('problem', api_invalid(p_field,
      format('%s is not a plain decimal amount like "150.00" (no sign, exponent or spaces)', ledger_repr(p_text))));
  END IF;
  IF length(split_part(p_text, '.', 1)) > 15 THEN
    RETURN jsonb_build_object('problem', api_invalid(p_field,
      'amount is too large: at most 15 digits before the decimal point'));
  END IF;
  v_places := length(split_part(p_text, '.', 2));
  IF v_places > v_units THEN
    RETURN jsonb_build_object('problem', api_invalid(p_field,
      format('amount has %s decimal places; %s allows %s', v_places, p_currency, v_units)));
  END IF;
  IF p_text::numeric = 0 AND NOT p_allow_zero THEN
    RETURN jsonb_build_object('problem', api_invalid(p_field, 'amount must be greater than zero'));
  END IF;
  RETURN jsonb_build_object('amount', p_text::numeric);
END $$;
