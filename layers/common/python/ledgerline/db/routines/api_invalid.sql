-- A field's validation problem, as ledgerline.errors.ValidationFailed renders one (STABLE, as
-- api_problem is: inlined into its callers).
CREATE OR REPLACE FUNCTION api_invalid(p_field text, p_message text) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT api_problem('validation_error', p_field || ': ' || p_message,
                     jsonb_build_array(jsonb_build_object('field', p_field, 'message', p_message)));
$$;
