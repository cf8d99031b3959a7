-- The transactional outbox: a domain event is written in the SAME transaction as the
-- change that caused it, so it exists exactly when the change committed. The relay
-- (scheduled job) sends pending rows to their SQS queue and marks them relayed; delivery
-- is at-least-once, so consumers tolerate duplicates (the message carries the row id).
--
-- A row's content never changes: the application role may only insert, read, and record
-- the relay's progress (relayed_at, attempts, last_error, next_attempt_at).

CREATE TABLE outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue           text NOT NULL CHECK (queue ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
  payload         jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  relayed_at      timestamptz,
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error      text,
  -- A row whose send failed waits (backoff) so it cannot starve the rows behind it.
  next_attempt_at timestamptz NOT NULL DEFAULT '-infinity'
);

-- What the relay scans: only pending rows, so the index stays small however long the
-- table grows.
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE relayed_at IS NULL;

CREATE FUNCTION outbox_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.queue IS DISTINCT FROM OLD.queue OR NEW.payload IS DISTINCT FROM OLD.payload
     OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
    RAISE EXCEPTION 'outbox row % is immutable: only the relay''s progress may change', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF OLD.relayed_at IS NOT NULL AND NEW.relayed_at IS DISTINCT FROM OLD.relayed_at THEN
    RAISE EXCEPTION 'outbox row % was relayed at %; that is final', OLD.id, OLD.relayed_at
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.attempts < OLD.attempts THEN
    RAISE EXCEPTION 'outbox row %: attempts only grow', OLD.id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER outbox_guard BEFORE UPDATE ON outbox
  FOR EACH ROW EXECUTE FUNCTION outbox_guard();

REVOKE UPDATE, DELETE, TRUNCATE ON outbox FROM ledgerline_app;
GRANT SELECT, INSERT ON outbox TO ledgerline_app;
GRANT UPDATE (relayed_at, attempts, last_error, next_attempt_at) ON outbox TO ledgerline_app;
