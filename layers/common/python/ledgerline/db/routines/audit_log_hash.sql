-- The content hash is computed by the database, so every writer (Python or a PL/pgSQL
-- money function) hashes the same bytes: the row's canonical record (audit_chain_record,
-- docs/audit.md), the very bytes the audit shipper chains and `audit verify` re-hashes.
-- Rows written before this definition keep the hash of the earlier formula
-- (jsonb_build_array(...)::text); the chain (audit_chain.content_hash) hashes every row's
-- canonical record, old or new.
CREATE OR REPLACE FUNCTION audit_log_hash() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.content_hash := sha256(convert_to(audit_chain_record(
    p_id => NEW.id, p_occurred_at => NEW.occurred_at, p_category => NEW.category, p_action => NEW.action,
    p_actor_id => NEW.actor_id, p_actor_type => NEW.actor_type, p_actor_ip => NEW.actor_ip,
    p_user_agent => NEW.user_agent, p_resource_type => NEW.resource_type, p_resource_id => NEW.resource_id,
    p_payload_before => NEW.payload_before, p_payload_after => NEW.payload_after,
    p_metadata => NEW.metadata), 'UTF8'));
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER audit_log_hash BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_hash();
