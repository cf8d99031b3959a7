-- A writer that does not compute balance_after and account_version (plain INSERTs by an
-- operator, say) gets them filled in, from the locked balance and the rows its statement
-- has inserted before (visible to a BEFORE trigger, not yet applied). ledger_post computes
-- them itself, so this never runs on its non-hot rows; on a hot account it only looks.
CREATE OR REPLACE FUNCTION ledger_entry_fill() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  r record;
  v_pending numeric;
  v_count bigint;
BEGIN
  PERFORM 1 FROM balances b WHERE b.account_id = NEW.account_id AND b.currency = NEW.currency AND NOT b.hot;
  IF NOT FOUND THEN
    RETURN NEW;  -- a hot account (a delta, no balance_after), or a mistake the statement check names
  END IF;
  SELECT b.posted, b.version INTO r FROM balances b WHERE b.account_id = NEW.account_id FOR UPDATE;
  SELECT coalesce(sum(e.amount), 0), count(*) INTO v_pending, v_count
    FROM entries e WHERE e.account_id = NEW.account_id AND e.account_version > r.version;
  NEW.account_version := r.version + v_count + 1;
  NEW.balance_after := r.posted + v_pending + NEW.amount;
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER entries_fill BEFORE INSERT ON entries
  FOR EACH ROW WHEN (NEW.account_version IS NULL) EXECUTE FUNCTION ledger_entry_fill();
