-- Fewer round trips and less work per money operation (the Benchmarks issue).

-- Taking a key, shared by both claims below: true when this transaction now owns it (a
-- key past its expiry is taken afresh). A duplicate still running makes it wait at most
-- p_wait_ms, then fail with lock_not_available.
CREATE FUNCTION idempotency_take(p_scope text, p_key uuid, p_request_hash text, p_wait_ms integer)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_saved text := current_setting('lock_timeout');
  v_taken boolean;
BEGIN
  PERFORM set_config('lock_timeout', p_wait_ms || 'ms', true);
  INSERT INTO idempotency_keys AS k (scope, key, request_hash)
  VALUES (p_scope, p_key, p_request_hash)
  ON CONFLICT (scope, key) DO UPDATE
     SET request_hash = EXCLUDED.request_hash, status_code = NULL, response_body = NULL, content_type = NULL,
         created_at = now(), expires_at = now() + interval '24 hours'
   WHERE k.expires_at <= now();
  v_taken := FOUND;
  PERFORM set_config('lock_timeout', v_saved, true);
  RETURN v_taken;
END $$;

-- The first claim of a key travels in one query string with the operation's first
-- statement (ledgerline.idempotency.execute), so it cannot hand back a row to look at: it
-- raises LLIK0 when the key is taken instead, and the caller then reads the stored
-- response in a transaction of its own (idempotency_claim).
CREATE FUNCTION idempotency_claim_fresh(p_scope text, p_key uuid, p_request_hash text, p_wait_ms integer)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT idempotency_take(p_scope, p_key, p_request_hash, p_wait_ms) THEN
    RAISE EXCEPTION 'idempotency key % is taken', p_key USING ERRCODE = 'LLIK0';
  END IF;
END $$;

-- The claim that hands back the stored request hash and response when the key is taken.
CREATE OR REPLACE FUNCTION idempotency_claim(p_scope text, p_key uuid, p_request_hash text, p_wait_ms integer)
RETURNS TABLE (claimed boolean, request_hash text, status_code smallint, response_body text, content_type text)
LANGUAGE plpgsql AS $$
BEGIN
  IF idempotency_take(p_scope, p_key, p_request_hash, p_wait_ms) THEN
    claimed := true;
    RETURN NEXT;
    RETURN;
  END IF;
  RETURN QUERY
    SELECT false, k.request_hash, k.status_code, k.response_body, k.content_type
      FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key;
END $$;

REVOKE ALL ON FUNCTION idempotency_take(text, uuid, text, integer), idempotency_claim_fresh(text, uuid, text, integer)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idempotency_take(text, uuid, text, integer), idempotency_claim_fresh(text, uuid, text, integer)
  TO ledgerline_app;

-- Under concurrent load PostgreSQL kept choosing a custom plan for the posting function's
-- lock-and-check query and so planned it again on every call: perf showed 14-16% of the
-- server's CPU in BuildCachedPlan at 8 clients. Its generic plan (index probes on the
-- legs' accounts) is the right one for any input, so the function always uses it.
ALTER FUNCTION ledger_post_legs(text, uuid[], text[], numeric[], text[], uuid[], jsonb, jsonb, text, text, jsonb, uuid,
                                boolean, uuid, text[], uuid)
  SET plan_cache_mode = force_generic_plan;
