-- Invariant 2 (and so 4), checked at COMMIT when every entry is in: each transaction has
-- at least two entries and they sum to zero per currency. A reversal must mirror the
-- transaction it reverses exactly.
CREATE OR REPLACE FUNCTION ledger_transaction_balanced() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_count    bigint;
  v_total    numeric;
  v_first    text;
  v_last     text;
  v_currency text;  -- "<currency> <sum>" of the first unbalanced currency
BEGIN
  -- The usual transaction is in one currency: one pass counts and sums its entries.
  SELECT count(*), sum(e.amount), min(e.currency), max(e.currency) INTO v_count, v_total, v_first, v_last
    FROM entries e WHERE e.transaction_id = NEW.id;
  IF v_first IS DISTINCT FROM v_last OR v_total <> 0 THEN
    -- The first currency that does not sum to zero.
    SELECT min(c.currency || ' ' || c.total) FILTER (WHERE c.total <> 0)
      INTO v_currency
      FROM (SELECT e.currency, sum(e.amount) AS total
              FROM entries e WHERE e.transaction_id = NEW.id GROUP BY e.currency) c;
  END IF;
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
