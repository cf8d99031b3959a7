-- An outbox row's content never changes: only the relay's progress does (relayed_at,
-- attempts, last_error, next_attempt_at; the application role may UPDATE only those
-- columns), relayed_at is set once, and attempts only grow.
CREATE OR REPLACE FUNCTION outbox_guard() RETURNS trigger
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

CREATE OR REPLACE TRIGGER outbox_guard BEFORE UPDATE ON outbox
  FOR EACH ROW EXECUTE FUNCTION outbox_guard();
