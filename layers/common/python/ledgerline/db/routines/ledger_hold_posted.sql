-- A posted hold became entries: its capture transaction debits the hold's account by
-- exactly the captured amount (checked at COMMIT, when the transaction exists).
CREATE OR REPLACE FUNCTION ledger_hold_posted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM 1 FROM entries e
   WHERE e.transaction_id = NEW.transaction_id AND e.account_id = NEW.account_id
     AND e.amount = -NEW.captured_amount;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hold % is posted but transaction % does not debit % of account %',
      NEW.id, NEW.transaction_id, NEW.captured_amount, NEW.account_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'holds_posted_has_entries';
  END IF;
  RETURN NULL;
END $$;

-- A constraint trigger cannot be CREATE OR REPLACEd: dropped and created again.
DROP TRIGGER IF EXISTS holds_posted_has_entries ON holds;
CREATE CONSTRAINT TRIGGER holds_posted_has_entries AFTER UPDATE ON holds
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'posted')
  EXECUTE FUNCTION ledger_hold_posted();
