-- Claim an idempotency key and hand back the stored request hash and response when the
-- key is taken: claimed = true when this transaction now owns it (see idempotency_take).
-- No caller in the code today: money_call claims the key itself (the same INSERT ... ON
-- CONFLICT, inline).
CREATE OR REPLACE FUNCTION idempotency_claim(p_scope text, p_key uuid, p_request_hash text, p_wait_ms integer)
RETURNS TABLE (claimed boolean, request_hash text, status_code smallint, response_body text, content_type text)
LANGUAGE plpgsql AS $$
BEGIN
  IF idempotency_take(p_scope => p_scope, p_key => p_key, p_request_hash => p_request_hash, p_wait_ms => p_wait_ms) THEN
    claimed := true;
    RETURN NEXT;
    RETURN;
  END IF;
  RETURN QUERY
    SELECT false, k.request_hash, k.status_code, k.response_body, k.content_type
      FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key;
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION idempotency_claim(text, uuid, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idempotency_claim(text, uuid, text, integer) TO ledgerline_app;
