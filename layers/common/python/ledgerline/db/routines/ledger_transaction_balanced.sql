-- Invariant 2 (and so 4), checked at COMMIT when every entry is in: each transaction has
-- at least two entries and they sum to zero per currency. A reversal must mirror the
-- transaction it reverses exactly.
CREATE OR REPLACE FUNCTION ledger_transaction_balanced() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_count    bigint;
  v_currency text;  -- "<currency> <sum>" of the first unbalanced currency
BEGIN
  -- One pass: the entry count, and the first currency that does not sum to zero.
  SELECT sum(c.n), min(c.currency || ' ' || c.total) FILTER (WHERE c.total <> 0)
    INTO v_count, v_currency
    FROM (SELECT e.currency, count(*) AS n, sum(e.amount) AS total
            FROM entries e WHERE e.transaction_id = NEW.id GROUP BY e.currency) c;
  IF coalesce(v_count, 0) < 2 THEN
    RAISE EXCEPTION 'transaction % has % entries; a transaction needs at least two', NEW.id, coalesce(v_count, 0)
      USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_balanced';
  END IF;
  IF v_currency IS NOT NULL THEN
    RAISE EXCEPTION 'transaction % is unbalanced: its % entries sum to %, not zero',
      NEW.id, split_part(v_currency, ' ', 1), split_part(v_currency, ' ', 2)
      USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_balanced';
  END IF;
  IF NEW.reverses IS NOT NULL THEN
    PERFORM 1 FROM (
      (SELECT account_id, currency, amount FROM entries WHERE transaction_id = NEW.id
       EXCEPT ALL
       SELECT account_id, currency, -amount FROM entries WHERE transaction_id = NEW.reverses)
      UNION ALL
      (SELECT account_id, currency, -amount FROM entries WHERE transaction_id = NEW.reverses
       EXCEPT ALL
       SELECT account_id, currency, amount FROM entries WHERE transaction_id = NEW.id)
    ) difference;
    IF FOUND THEN
      RAISE EXCEPTION 'transaction % does not mirror the transaction % it reverses', NEW.id, NEW.reverses
        USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_reversal_mirrors';
    END IF;
  END IF;
  RETURN NULL;
END $$;

-- A constraint trigger cannot be CREATE OR REPLACEd: dropped and created again.
DROP TRIGGER IF EXISTS transactions_balanced ON transactions;
CREATE CONSTRAINT TRIGGER transactions_balanced AFTER INSERT ON transactions
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();
