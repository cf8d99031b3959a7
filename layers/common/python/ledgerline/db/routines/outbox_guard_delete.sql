-- Relayed outbox rows are purged after a while (ledgerline.outbox.purge_relayed): they
-- carry ids only, but nothing is kept forever without a reason. Pending rows, and rows
-- relayed less than a day ago (a consumer may still look one up), cannot be deleted.
CREATE OR REPLACE FUNCTION outbox_guard_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.relayed_at IS NULL OR OLD.relayed_at > now() - interval '1 day' THEN
    RAISE EXCEPTION 'outbox row % is pending or relayed less than a day ago; it stays', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN OLD;
END $$;

CREATE OR REPLACE TRIGGER outbox_guard_delete BEFORE DELETE ON outbox
  FOR EACH ROW EXECUTE FUNCTION outbox_guard_delete();
