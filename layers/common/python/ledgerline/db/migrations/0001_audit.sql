-- The audit trail's write path: one row per significant action, written in the same
-- transaction as the change it describes. Rows are immutable (invariant 1): the
-- application role may only INSERT and SELECT, and triggers refuse UPDATE, DELETE and
-- TRUNCATE for everyone, the owner included.

CREATE FUNCTION forbid_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'corrections are new rows (a reversing transaction), never edits';
END $$;

CREATE TABLE audit_log (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  occurred_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  category       text NOT NULL CHECK (category IN ('auth', 'financial', 'invoices', 'escrow', 'admin')),
  action         text NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
  actor_id       uuid,
  actor_type     text NOT NULL CHECK (actor_type IN ('user', 'merchant', 'admin', 'auditor', 'system', 'anonymous', 'gateway', 'api_key')),
  actor_ip       inet,
  user_agent     text,
  resource_type  text NOT NULL,
  resource_id    text,
  payload_before jsonb,
  payload_after  jsonb,
  metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- The writing transaction's id: the shipper chains only rows whose transaction is
  -- older than the oldest one still running, so a late commit can never slip in behind
  -- an already-shipped row.
  xid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
  content_hash   bytea NOT NULL
);

CREATE INDEX audit_log_occurred_at ON audit_log (occurred_at, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id, occurred_at);
CREATE INDEX audit_log_resource ON audit_log (resource_type, resource_id, occurred_at);
CREATE INDEX audit_log_xid ON audit_log (xid);

-- The content hash is computed by the database, so every writer (Python or a PL/pgSQL
-- money function) hashes the same canonical text: jsonb's own normalised rendering.
CREATE FUNCTION audit_log_hash() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.content_hash := sha256(convert_to(jsonb_build_array(
    NEW.id, NEW.occurred_at, NEW.category, NEW.action, NEW.actor_id, NEW.actor_type,
    host(NEW.actor_ip), NEW.user_agent, NEW.resource_type, NEW.resource_id,
    NEW.payload_before, NEW.payload_after, NEW.metadata)::text, 'UTF8'));
  RETURN NEW;
END $$;

CREATE TRIGGER audit_log_hash BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_hash();
CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM ledgerline_app;
GRANT SELECT, INSERT ON audit_log TO ledgerline_app;
