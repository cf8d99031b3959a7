-- The first claim of a key, for a caller that sends it in one query string with the
-- operation's first statement: it cannot hand back a row to look at, so it raises LLIK0
-- when the key is taken instead, and the caller then reads the stored response in a
-- transaction of its own (idempotency_claim). No caller in the code today: money_call
-- claims the key itself.
CREATE OR REPLACE FUNCTION idempotency_claim_fresh(p_scope text, p_key uuid, p_request_hash text, p_wait_ms integer)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT idempotency_take(p_scope => p_scope, p_key => p_key, p_request_hash => p_request_hash,
                          p_wait_ms => p_wait_ms) THEN
    RAISE EXCEPTION 'idempotency key % is taken', p_key USING ERRCODE = 'LLIK0';
  END IF;
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION idempotency_claim_fresh(text, uuid, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idempotency_claim_fresh(text, uuid, text, integer) TO ledgerline_app;
