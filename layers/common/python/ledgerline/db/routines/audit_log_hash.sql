-- The content hash is computed by the database, so every writer (Python or a PL/pgSQL
-- money function) hashes the same canonical text: jsonb's own normalised rendering.
CREATE OR REPLACE FUNCTION audit_log_hash() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.content_hash := sha256(convert_to(jsonb_build_array(
    NEW.id, NEW.occurred_at, NEW.category, NEW.action, NEW.actor_id, NEW.actor_type,
    host(NEW.actor_ip), NEW.user_agent, NEW.resource_type, NEW.resource_id,
    NEW.payload_before, NEW.payload_after, NEW.metadata)::text, 'UTF8'));
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER audit_log_hash BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_hash();
