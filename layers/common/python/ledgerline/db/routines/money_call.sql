-- One money request, one statement: admit the caller (auth_admit), claim the caller's
-- Idempotency-Key, run the operation (money_op), store its response, return it. In
-- autocommit this is the request's only round trip and transaction
-- (ledgerline.idempotency.call).
--
-- * the same key and request again: the stored response (replayed), nothing runs again;
-- * the same key, another request: 422 idempotency_key_reused (not stored);
-- * the same key while the first is still running: this waits on its claim for at most
--   p_wait_ms, then replays it, or fails with lock_not_available (the caller answers 409);
-- * anything raised (a bug, an outage) rolls the claim back with everything else.
-- outcome: ran | replayed | mismatch | unauthorized | forbidden | rate_limited.
CREATE OR REPLACE FUNCTION money_call(
  p_claims jsonb, p_policy jsonb, p_checks jsonb, p_actor jsonb, p_key uuid, p_request_hash text,
  p_wait_ms integer, p_op text, p_args jsonb
) RETURNS TABLE (status integer, body text, content_type text, outcome text, retry_after integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  v_admit  jsonb := auth_admit(p_claims => p_claims, p_policy => p_policy, p_checks => p_checks, p_actor => p_actor);
  v_scope  text := p_claims->>'sub';
  v_actor  jsonb;
  v_saved  text;
  v_taken  boolean;
  v_result jsonb;
  k        record;
BEGIN
  IF v_admit->>'outcome' <> 'ok' THEN
    RETURN QUERY SELECT p.status, p.body::text, 'application/problem+json', v_admit->>'outcome',
                        (v_admit->>'retry_after')::integer
      FROM (SELECT (api_problem(v_admit->>'outcome', v_admit->>'detail')->>'status')::integer AS status,
                   api_problem(v_admit->>'outcome', v_admit->>'detail') AS body) p;
    RETURN;
  END IF;
  v_actor := p_actor || jsonb_build_object(
    'id', v_scope, 'type', CASE WHEN p_claims->>'typ' = 'api_key' THEN 'api_key' ELSE v_admit->>'role' END);

  v_saved := current_setting('lock_timeout');
  PERFORM set_config('lock_timeout', p_wait_ms || 'ms', true);
  INSERT INTO idempotency_keys AS i (scope, key, request_hash)
  VALUES (v_scope, p_key, p_request_hash)
  ON CONFLICT (scope, key) DO UPDATE
     SET request_hash = EXCLUDED.request_hash, status_code = NULL, response_body = NULL, content_type = NULL,
         created_at = now(), expires_at = now() + interval '24 hours'
   WHERE i.expires_at <= now();
  v_taken := FOUND;
  PERFORM set_config('lock_timeout', v_saved, true);

  IF NOT v_taken THEN
    SELECT i.request_hash, i.status_code, i.response_body, i.content_type INTO k
      FROM idempotency_keys i WHERE i.scope = v_scope AND i.key = p_key;
    IF k.request_hash <> p_request_hash THEN
      RETURN QUERY SELECT 422, api_problem('idempotency_key_reused',
        'this Idempotency-Key was already used for a different request; use a new key for a new operation')::text,
        'application/problem+json', 'mismatch', NULL::integer;
      RETURN;
    END IF;
    PERFORM ledger_audit(p_actor => v_actor, p_rows => jsonb_build_array(jsonb_build_object(
      'action', 'idempotency.replayed', 'category', 'financial', 'resource_type', 'idempotency_key',
      'resource_id', p_key, 'metadata', jsonb_build_object('scope', v_scope, 'status', k.status_code))),
      p_resource_id => NULL, p_before => NULL, p_after => NULL);
    RETURN QUERY SELECT k.status_code::integer, k.response_body, k.content_type, 'replayed', NULL::integer;
    RETURN;
  END IF;

  v_result := money_op(p_op, v_actor, p_args);
  UPDATE idempotency_keys i
     SET status_code = (v_result->>'status')::smallint, response_body = (v_result->'body')::text,
         content_type = CASE WHEN (v_result->>'status')::integer >= 400 THEN 'application/problem+json'
                             ELSE 'application/json' END
   WHERE i.scope = v_scope AND i.key = p_key
  RETURNING i.status_code, i.response_body, i.content_type INTO k;
  RETURN QUERY SELECT k.status_code::integer, k.response_body, k.content_type, 'ran', NULL::integer;
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION money_call(jsonb, jsonb, jsonb, jsonb, uuid, text, integer, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION money_call(jsonb, jsonb, jsonb, jsonb, uuid, text, integer, text, jsonb) TO ledgerline_app;
