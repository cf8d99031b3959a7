-- A problem (RFC 9457) of ledgerline.errors: the codes SQL answers with, their status
-- and title (a test keeps them equal to the Python classes).
--
-- One expression, no FROM, STABLE (as jsonb_build_object is): PostgreSQL inlines it into
-- its callers' plans instead of parsing and planning a SQL function on every call.
CREATE OR REPLACE FUNCTION api_problem(p_code text, p_detail text, p_errors jsonb DEFAULT NULL) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p_code IN ('unauthorized', 'forbidden', 'not_found', 'conflict', 'insufficient_funds',
                              'invalid_state_transition', 'idempotency_key_in_progress', 'validation_error',
                              'idempotency_key_reused', 'rate_limited') THEN
           jsonb_build_object('type', 'https://docs.ledgerline.dev/problems/' || replace(p_code, '_', '-'),
                              'title', CASE p_code
                                         WHEN 'unauthorized' THEN 'Authentication required'
                                         WHEN 'forbidden' THEN 'Not allowed'
                                         WHEN 'not_found' THEN 'Not found'
                                         WHEN 'conflict' THEN 'Conflict'
                                         WHEN 'insufficient_funds' THEN 'Insufficient funds'
                                         WHEN 'invalid_state_transition' THEN 'Invalid state transition'
                                         WHEN 'idempotency_key_in_progress' THEN 'Request with this key in progress'
                                         WHEN 'validation_error' THEN 'Request is not valid'
                                         WHEN 'idempotency_key_reused' THEN 'Idempotency-Key reused'
                                         WHEN 'rate_limited' THEN 'Too many requests' END,
                              'status', CASE p_code
                                          WHEN 'unauthorized' THEN 401
                                          WHEN 'forbidden' THEN 403
                                          WHEN 'not_found' THEN 404
                                          WHEN 'conflict' THEN 409
                                          WHEN 'insufficient_funds' THEN 409
                                          WHEN 'invalid_state_transition' THEN 409
                                          WHEN 'idempotency_key_in_progress' THEN 409
                                          WHEN 'validation_error' THEN 422
                                          WHEN 'idempotency_key_reused' THEN 422
                                          WHEN 'rate_limited' THEN 429 END,
                              'detail', p_detail, 'code', p_code)
           || CASE WHEN p_errors IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('errors', p_errors) END
         END;
$$;
