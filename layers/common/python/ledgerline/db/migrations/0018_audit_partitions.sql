-- Retention (issue 15): audit_log becomes a table partitioned by month of occurred_at, so
-- that rows can leave PostgreSQL, once shipped to the Object Lock bucket and verified
-- there, by detaching whole monthly partitions (audit_log_retire, run by the owner). Rows
-- are never deleted: audit_log still refuses UPDATE, DELETE and TRUNCATE for every role
-- (its row triggers are every partition's too, whichever table a statement names). The
-- application role holds no privilege on any partition, only on audit_log. Not guarded:
-- the owner naming one partition in a TRUNCATE (a statement trigger is not inherited, and
-- per-partition triggers would be triggers no routine file defines); the owner can
-- detach a partition anyway, which is retention's one way out (audit_log_retire).
--
-- The table as it was becomes the first partition, audit_log_p_initial, holding every
-- instant before the first of next month: no row is copied or rewritten, so no content
-- hash is recomputed. Monthly partitions follow, twelve months ahead (audit_log_retire
-- keeps twelve months ahead), and a default partition catches anything beyond them, so
-- an insert never fails for want of a partition.
--
-- A partitioned table's primary key includes its partition key: (id, occurred_at). ids
-- are random UUIDs; nothing refers to audit_log by foreign key (the chain tables of 0016
-- deliberately do not).

ALTER TABLE audit_log RENAME TO audit_log_p_initial;
-- Its primary key (id) gives way to the parent's (id, occurred_at), built on it at ATTACH.
ALTER TABLE audit_log_p_initial DROP CONSTRAINT audit_log_pkey;
ALTER INDEX audit_log_occurred_at RENAME TO audit_log_p_initial_occurred_at;
ALTER INDEX audit_log_actor RENAME TO audit_log_p_initial_actor;
ALTER INDEX audit_log_resource RENAME TO audit_log_p_initial_resource;
ALTER INDEX audit_log_xid RENAME TO audit_log_p_initial_xid;
ALTER INDEX audit_log_subjects RENAME TO audit_log_p_initial_subjects;
-- Its triggers are the parent's from now on (row triggers are cloned onto partitions).
DROP TRIGGER audit_log_hash ON audit_log_p_initial;
DROP TRIGGER audit_log_immutable ON audit_log_p_initial;
DROP TRIGGER audit_log_no_truncate ON audit_log_p_initial;
REVOKE ALL ON audit_log_p_initial FROM ledgerline_app;

CREATE TABLE audit_log (LIKE audit_log_p_initial INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)
  PARTITION BY RANGE (occurred_at);
ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id, occurred_at);
CREATE INDEX audit_log_occurred_at ON audit_log (occurred_at, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id, occurred_at);
CREATE INDEX audit_log_resource ON audit_log (resource_type, resource_id, occurred_at);
CREATE INDEX audit_log_xid ON audit_log (xid);
CREATE INDEX audit_log_subjects ON audit_log USING gin (subject_ids);

-- The same triggers as before (their functions: db/routines/audit_log_hash.sql and
-- forbid_mutation.sql, which re-create them on this table from now on).
CREATE TRIGGER audit_log_hash BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_hash();
CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM ledgerline_app;
GRANT SELECT, INSERT ON audit_log TO ledgerline_app;

DO $$
DECLARE
  v_next date := (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')::date;
  v_from date;
  v_name text;
BEGIN
  EXECUTE format('ALTER TABLE audit_log ATTACH PARTITION audit_log_p_initial FOR VALUES FROM (MINVALUE) TO (%L)',
                 v_next::timestamp AT TIME ZONE 'UTC');
  FOR i IN 0..11 LOOP
    v_from := (v_next + make_interval(months => i))::date;
    v_name := 'audit_log_p' || to_char(v_from, 'YYYY_MM');
    EXECUTE format('CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%L) TO (%L)', v_name,
                   v_from::timestamp AT TIME ZONE 'UTC', (v_from + interval '1 month')::timestamp AT TIME ZONE 'UTC');
  END LOOP;
END $$;

CREATE TABLE audit_log_p_default PARTITION OF audit_log DEFAULT;

-- What `audit verify` proved: the chain, from seq 1 through through_seq, matches the
-- bucket (every object version, every checkpoint signature) and the database. Written by
-- the verifier as the owner; audit_log_retire detaches a partition only when every row
-- of it is chained at or below the latest through_seq, in a batch marked shipped.
CREATE TABLE audit_log_verified (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  through_seq bigint NOT NULL CHECK (through_seq >= 0),
  chain_head  bytea,
  verified_at timestamptz NOT NULL DEFAULT now(),
  verified_by text
);
GRANT SELECT ON audit_log_verified TO ledgerline_app;
