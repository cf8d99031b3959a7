-- Taking a key, shared by idempotency_claim and idempotency_claim_fresh: true when this
-- transaction now owns it (a key past its expiry is taken afresh). A duplicate still
-- running makes it wait at most p_wait_ms, then fail with lock_not_available.
--
-- One row per (caller, key): the claiming database transaction inserts it, runs the
-- operation and stores the response before it commits, so a committed row always has
-- its response, and a duplicate request waits on the uncommitted row, then replays it.
CREATE OR REPLACE FUNCTION idempotency_take(p_scope text, p_key uuid, p_request_hash text, p_wait_ms integer)
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

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION idempotency_take(text, uuid, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idempotency_take(text, uuid, text, integer) TO ledgerline_app;
