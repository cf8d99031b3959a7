-- The audit shipper's last step: a batch's objects and its signed checkpoint are in the
-- bucket; record where (keys, sha256, version ids) and mark it shipped, so the next run
-- chains new rows. Idempotent: a batch already shipped keeps what it first recorded.
CREATE OR REPLACE FUNCTION audit_chain_shipped(p_first_seq bigint, p_objects jsonb, p_checkpoint text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  UPDATE audit_ship_batches
     SET shipped_at = now(), objects = p_objects, checkpoint = p_checkpoint
   WHERE first_seq = p_first_seq AND shipped_at IS NULL
  RETURNING true
$$;

REVOKE ALL ON FUNCTION audit_chain_shipped(bigint, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_chain_shipped(bigint, jsonb, text) TO ledgerline_app;
