-- A field's validation problem, as ledgerline.errors.ValidationFailed renders one.
CREATE OR REPLACE FUNCTION api_invalid(p_field text, p_message text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT api_problem('validation_error', p_field || ': ' || p_message,
                     jsonb_build_array(jsonb_build_object('field', p_field, 'message', p_message)));
$$;
