-- Fold hot accounts' deltas into their balances, one account per statement (one
-- snapshot each: the deltas deleted are exactly the ones added; deltas committed
-- meanwhile wait for the next fold). A failure on one account never holds up the others.
-- A hot account is credited and debited by appending balance_deltas rows instead of
-- updating (and so locking) its balance row; this is where they are counted.
CREATE OR REPLACE FUNCTION ledger_fold_balances() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_account uuid;
  v_rows    integer;
  v_total   integer := 0;
BEGIN
  FOR v_account IN SELECT account_id FROM balances WHERE hot ORDER BY account_id LOOP
    BEGIN
      WITH folded AS (
        DELETE FROM balance_deltas WHERE account_id = v_account RETURNING amount
      ), applied AS (
        UPDATE balances b SET posted = b.posted + t.amount, version = b.version + 1
          FROM (SELECT sum(amount) AS amount, count(*) AS n FROM folded) t
         WHERE b.account_id = v_account AND t.n > 0
        RETURNING t.n
      )
      SELECT coalesce(sum(n), 0) INTO v_rows FROM applied;
      v_total := v_total + v_rows;
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'could not fold the deltas of account %: %', v_account, SQLERRM;
    END;
  END LOOP;
  RETURN v_total;
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_fold_balances() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_fold_balances() TO ledgerline_app;
