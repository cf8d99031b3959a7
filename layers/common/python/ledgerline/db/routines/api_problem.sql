-- A problem (RFC 9457) of ledgerline.errors: the codes SQL answers with, their status
-- and title (a test keeps them equal to the Python classes).
CREATE OR REPLACE FUNCTION api_problem(p_code text, p_detail text, p_errors jsonb DEFAULT NULL) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT jsonb_build_object('type', 'https://docs.ledgerline.dev/problems/' || replace(p_code, '_', '-'),
                            'title', t.title, 'status', t.status, 'detail', p_detail, 'code', p_code)
         || CASE WHEN p_errors IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('errors', p_errors) END
    FROM (VALUES ('unauthorized', 401, 'Authentication required'),
                 ('forbidden', 403, 'Not allowed'),
                 ('not_found', 404, 'Not found'),
                 ('conflict', 409, 'Conflict'),
                 ('insufficient_funds', 409, 'Insufficient funds'),
                 ('invalid_state_transition', 409, 'Invalid state transition'),
                 ('idempotency_key_in_progress', 409, 'Request with this key in progress'),
                 ('validation_error', 422, 'Request is not valid'),
                 ('idempotency_key_reused', 422, 'Idempotency-Key reused'),
                 ('rate_limited', 429, 'Too many requests')) AS t(code, status, title)
   WHERE t.code = p_code;
$$;
